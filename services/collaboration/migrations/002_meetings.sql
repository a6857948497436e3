-- Meetings of users with contacts. The tenant's (no per-user visibility); attendee and contact rows copy the
-- meeting's times so a user's calendar and a contact's meetings are index ranges in start order.
CREATE TABLE collaboration.meetings (
    tenant_id    text        NOT NULL,
    id           uuid        NOT NULL,
    title        text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    start_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    time_zone    text        NOT NULL,
    attendee_user_ids text[] NOT NULL,
    contact_ids  uuid[]      NOT NULL DEFAULT '{}',
    organizer_id text        NOT NULL,
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text        NOT NULL,
    deleted_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- At most 14 days long: the conflict search bounds its index range by it.
    CHECK (end_at > start_at AND end_at <= start_at + interval '14 days')
);

-- A user's meetings, by start; a cancelled meeting keeps its rows, and every read joins the live meeting.
CREATE TABLE collaboration.meeting_attendees (
    tenant_id  text        NOT NULL,
    user_id    text        NOT NULL,
    start_at   timestamptz NOT NULL,
    end_at     timestamptz NOT NULL,
    meeting_id uuid        NOT NULL,
    PRIMARY KEY (tenant_id, user_id, start_at, meeting_id),
    FOREIGN KEY (tenant_id, meeting_id) REFERENCES collaboration.meetings (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX meeting_attendees_by_meeting ON collaboration.meeting_attendees (tenant_id, meeting_id);

CREATE TABLE collaboration.meeting_contacts (
    tenant_id  text        NOT NULL,
    contact_id uuid        NOT NULL,
    start_at   timestamptz NOT NULL,
    end_at     timestamptz NOT NULL,
    meeting_id uuid        NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, start_at, meeting_id),
    FOREIGN KEY (tenant_id, meeting_id) REFERENCES collaboration.meetings (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX meeting_contacts_by_meeting ON collaboration.meeting_contacts (tenant_id, meeting_id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['meetings', 'meeting_attendees', 'meeting_contacts']
    LOOP
        EXECUTE format('ALTER TABLE collaboration.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE collaboration.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON collaboration.%I
            USING (tenant_id = current_setting('app.tenant_id', true))
            WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    END LOOP;
END $$;
