-- Erasure (the contacts feed's ERASED event) deletes notes and comments that were only about the person. Deletes are
-- otherwise soft, so these tables had no DELETE policy; this one admits only a transaction that declares itself the
-- erasure (app.erasure = 'on', set by the feed consumer alone), within its tenant.
CREATE POLICY erasure ON collaboration.notes FOR DELETE USING (
    tenant_id = current_setting('app.tenant_id', true) AND current_setting('app.erasure', true) = 'on');
CREATE POLICY erasure ON collaboration.comments FOR DELETE USING (
    tenant_id = current_setting('app.tenant_id', true) AND current_setting('app.erasure', true) = 'on');
