-- The contact fields templates are rendered with ({{contact.name.given}}, {{contact.email}}, {{custom.tier}}), as the
-- contacts feed last gave them: one row per live contact, placeholder names and values side by side. Written with the
-- address directory (created, updated, undeleted, unmerged), forgotten when the contact is deleted, merged away or
-- erased. Contacts the feed brought before this migration get theirs at their next change.
CREATE TABLE communication.contact_fields (
    tenant_id  text   NOT NULL,
    contact_id uuid   NOT NULL,
    names      text[] NOT NULL,
    field_values text[] NOT NULL,
    PRIMARY KEY (tenant_id, contact_id),
    CHECK (cardinality(names) = cardinality(field_values))
);

ALTER TABLE communication.contact_fields ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.contact_fields FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.contact_fields
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
