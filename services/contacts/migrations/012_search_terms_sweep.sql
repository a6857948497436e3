-- Search terms no live contact holds any more (a deleted contact's address, a person's old name) are removed by the
-- hourly maintenance: kept, they would fill a query word's 32 shortest prefix candidates and hide live words. The
-- maintenance walks the terms across tenants under this read policy (as the other purges read), then deletes a
-- tenant's unused ones under that tenant's own policy. Writers and the sweep exclude each other per tenant with an
-- advisory lock (writers share it; see PostgresContactStore.termsStatement and ContactsMaintenance.sweepTerms).
CREATE POLICY retention_purge_read ON contacts.search_terms FOR SELECT
    USING (current_setting('app.retention_purge', true) = 'on');
