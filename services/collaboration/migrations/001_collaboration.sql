-- Notes, comments, teams and grants, notifications and files. Every table holds tenant data: tenant_id leads each
-- key and index, and forced row-level security admits only the rows of the tenant set per transaction
-- (app.tenant_id). Notes, comments, notifications and their per-user state are further limited to the user set per
-- transaction (app.user_id; app.user_admin = 'on' for the tenant's admins), so what a user may read is decided by the
-- database, not by each query remembering a WHERE clause.

CREATE TABLE collaboration.teams (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX teams_unique_name ON collaboration.teams (tenant_id, lower(name));

CREATE TABLE collaboration.team_members (
    tenant_id text NOT NULL,
    team_id   uuid NOT NULL,
    user_id   text NOT NULL,
    PRIMARY KEY (tenant_id, team_id, user_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES collaboration.teams (tenant_id, id) ON DELETE CASCADE
);
-- The visibility policies look up the caller's teams by user.
CREATE INDEX team_members_by_user ON collaboration.team_members (tenant_id, user_id, team_id);

-- The caller's teams (app.user_id in app.tenant_id), for the policies below. SECURITY INVOKER: team_members' own
-- policy still applies.
CREATE FUNCTION collaboration.caller_teams() RETURNS SETOF uuid LANGUAGE sql STABLE AS $$
    SELECT team_id FROM collaboration.team_members
    WHERE tenant_id = current_setting('app.tenant_id', true) AND user_id = current_setting('app.user_id', true)
$$;

CREATE TABLE collaboration.notes (
    tenant_id          text        NOT NULL,
    id                 uuid        NOT NULL,
    body               text        NOT NULL,
    -- Subjects as parallel arrays (type, id); note_subjects indexes them.
    subject_types      smallint[]  NOT NULL,
    subject_ids        uuid[]      NOT NULL,
    -- 1 private (author), 2 team (team_id's members), 3 tenant.
    visibility         smallint    NOT NULL CHECK (visibility BETWEEN 1 AND 3),
    team_id            uuid,
    mentioned_user_ids text[]      NOT NULL DEFAULT '{}',
    author_id          text        NOT NULL,
    version            bigint      NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL,
    created_by         text        NOT NULL,
    updated_at         timestamptz NOT NULL,
    updated_by         text        NOT NULL,
    deleted_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES collaboration.teams (tenant_id, id),
    CHECK ((visibility = 2) = (team_id IS NOT NULL)),
    CHECK (cardinality(subject_types) = cardinality(subject_ids))
);

-- One row per (note, subject): a record's notes as one index range in page order (created_at, id). created_at is
-- copied so the order comes from this index alone.
CREATE TABLE collaboration.note_subjects (
    tenant_id    text        NOT NULL,
    subject_type smallint    NOT NULL,
    subject_id   uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    note_id      uuid        NOT NULL,
    PRIMARY KEY (tenant_id, subject_type, subject_id, created_at, note_id),
    FOREIGN KEY (tenant_id, note_id) REFERENCES collaboration.notes (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX note_subjects_by_note ON collaboration.note_subjects (tenant_id, note_id);

CREATE TABLE collaboration.grants (
    tenant_id  text        NOT NULL,
    id         uuid        NOT NULL,
    note_id    uuid        NOT NULL,
    user_id    text,
    team_id    uuid,
    -- 1 view, 2 edit.
    permission smallint    NOT NULL CHECK (permission IN (1, 2)),
    granted_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, note_id) REFERENCES collaboration.notes (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, team_id) REFERENCES collaboration.teams (tenant_id, id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX grants_by_user ON collaboration.grants (tenant_id, note_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX grants_by_team ON collaboration.grants (tenant_id, note_id, team_id) WHERE team_id IS NOT NULL;

CREATE TABLE collaboration.comments (
    tenant_id    text        NOT NULL,
    id           uuid        NOT NULL,
    -- The thread: a note, or a record (subject_type, subject_id).
    note_id      uuid,
    subject_type smallint,
    subject_id   uuid,
    parent_id    uuid,
    body         text        NOT NULL,
    author_id    text        NOT NULL,
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text        NOT NULL,
    deleted_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, note_id) REFERENCES collaboration.notes (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, parent_id) REFERENCES collaboration.comments (tenant_id, id) ON DELETE CASCADE,
    CHECK ((note_id IS NULL) <> (subject_type IS NULL)),
    CHECK ((subject_type IS NULL) = (subject_id IS NULL))
);
CREATE INDEX comments_by_note ON collaboration.comments (tenant_id, note_id, created_at, id) WHERE note_id IS NOT NULL;
CREATE INDEX comments_by_subject ON collaboration.comments (tenant_id, subject_type, subject_id, created_at, id)
    WHERE subject_type IS NOT NULL;

-- Notifications are numbered per tenant by a counter row that each writer locks until it commits, so ids become
-- visible in order: a subscriber reading "id > last delivered" can never skip one that commits late.
CREATE TABLE collaboration.notification_sequences (
    tenant_id text   NOT NULL PRIMARY KEY,
    last_id   bigint NOT NULL
);

CREATE TABLE collaboration.notifications (
    tenant_id     text        NOT NULL,
    id            bigint      NOT NULL,
    -- 1 mention, 2 share, 3 comment, 4 announcement.
    kind          smallint    NOT NULL CHECK (kind BETWEEN 1 AND 4),
    -- The audience: users, a team (its members when read), or the tenant; exactly one.
    user_ids      text[]      NOT NULL DEFAULT '{}',
    team_id       uuid,
    tenant_wide   boolean     NOT NULL DEFAULT false,
    title         text        NOT NULL,
    body          text        NOT NULL DEFAULT '',
    resource_type text        NOT NULL DEFAULT '',
    resource_id   text        NOT NULL DEFAULT '',
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES collaboration.teams (tenant_id, id) ON DELETE CASCADE,
    CHECK ((cardinality(user_ids) > 0)::int + (team_id IS NOT NULL)::int + tenant_wide::int = 1)
);

-- What each user did with a notification.
CREATE TABLE collaboration.notification_states (
    tenant_id       text        NOT NULL,
    user_id         text        NOT NULL,
    notification_id bigint      NOT NULL,
    read_at         timestamptz,
    acknowledged_at timestamptz,
    PRIMARY KEY (tenant_id, user_id, notification_id),
    FOREIGN KEY (tenant_id, notification_id) REFERENCES collaboration.notifications (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE collaboration.notification_preferences (
    tenant_id   text       NOT NULL,
    user_id     text       NOT NULL,
    muted_kinds smallint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE collaboration.files (
    tenant_id     text        NOT NULL,
    id            uuid        NOT NULL,
    name          text        NOT NULL,
    content_type  text        NOT NULL,
    size_bytes    bigint      NOT NULL CHECK (size_bytes >= 0),
    sha256        text        NOT NULL,
    subject_types smallint[]  NOT NULL,
    subject_ids   uuid[]      NOT NULL,
    created_at    timestamptz NOT NULL,
    created_by    text        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (cardinality(subject_types) = cardinality(subject_ids))
);

CREATE TABLE collaboration.file_subjects (
    tenant_id    text        NOT NULL,
    subject_type smallint    NOT NULL,
    subject_id   uuid        NOT NULL,
    created_at   timestamptz NOT NULL,
    file_id      uuid        NOT NULL,
    PRIMARY KEY (tenant_id, subject_type, subject_id, created_at, file_id),
    FOREIGN KEY (tenant_id, file_id) REFERENCES collaboration.files (tenant_id, id) ON DELETE CASCADE
);

-- A file's content in fixed-size pieces, read back one row at a time by DownloadFile.
CREATE TABLE collaboration.file_chunks (
    tenant_id text    NOT NULL,
    file_id   uuid    NOT NULL,
    index     integer NOT NULL,
    data      bytea   NOT NULL,
    PRIMARY KEY (tenant_id, file_id, index),
    FOREIGN KEY (tenant_id, file_id) REFERENCES collaboration.files (tenant_id, id) ON DELETE CASCADE
);
-- Uploaded content is mostly compressed already (images, PDFs, archives): storing it out of line uncompressed saves
-- the CPU of a compression attempt that would gain nothing.
ALTER TABLE collaboration.file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Tenant isolation on every table.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['teams', 'team_members', 'notes', 'note_subjects', 'grants', 'comments', 'notification_sequences',
        'notifications', 'notification_states', 'notification_preferences', 'files', 'file_subjects', 'file_chunks']
    LOOP
        EXECUTE format('ALTER TABLE collaboration.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE collaboration.%I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['teams', 'team_members', 'note_subjects', 'notification_sequences', 'files', 'file_subjects',
        'file_chunks']
    LOOP
        EXECUTE format($p$CREATE POLICY tenant_isolation ON collaboration.%I
            USING (tenant_id = current_setting('app.tenant_id', true))
            WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    END LOOP;
END $$;

-- Notes: readable by admins, the author, everyone for TENANT, the team's members for TEAM, and grantees (a user, or a
-- team the user is in); written by the author (insert) and changed by admins, the author and EDIT grantees. No
-- DELETE policy: deletes are soft.
CREATE POLICY note_read ON collaboration.notes FOR SELECT USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        current_setting('app.user_admin', true) = 'on'
        OR author_id = current_setting('app.user_id', true)
        OR visibility = 3
        OR (visibility = 2 AND team_id IN (SELECT collaboration.caller_teams()))
        OR EXISTS (
            SELECT 1 FROM collaboration.grants g
            WHERE g.tenant_id = notes.tenant_id AND g.note_id = notes.id
                AND (g.user_id = current_setting('app.user_id', true) OR g.team_id IN (SELECT collaboration.caller_teams())))));
CREATE POLICY note_insert ON collaboration.notes FOR INSERT WITH CHECK (
    tenant_id = current_setting('app.tenant_id', true) AND author_id = current_setting('app.user_id', true));
CREATE POLICY note_update ON collaboration.notes FOR UPDATE USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        current_setting('app.user_admin', true) = 'on'
        OR author_id = current_setting('app.user_id', true)
        OR EXISTS (
            SELECT 1 FROM collaboration.grants g
            WHERE g.tenant_id = notes.tenant_id AND g.note_id = notes.id AND g.permission = 2
                AND (g.user_id = current_setting('app.user_id', true) OR g.team_id IN (SELECT collaboration.caller_teams())))))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Grants: the tenant reads them (ListGrants first checks that the caller may read the note); only the note's author
-- or an admin makes or revokes one.
CREATE POLICY grant_read ON collaboration.grants FOR SELECT USING (tenant_id = current_setting('app.tenant_id', true));
-- One policy per command, not FOR ALL: a FOR ALL policy would also apply to SELECT, and the notes' read policy
-- reads grants, so the two would recurse.
CREATE POLICY grant_insert ON collaboration.grants FOR INSERT WITH CHECK (
    tenant_id = current_setting('app.tenant_id', true) AND (
        current_setting('app.user_admin', true) = 'on'
        OR EXISTS (
            SELECT 1 FROM collaboration.notes n
            WHERE n.tenant_id = grants.tenant_id AND n.id = grants.note_id AND n.author_id = current_setting('app.user_id', true))));
CREATE POLICY grant_update ON collaboration.grants FOR UPDATE USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        current_setting('app.user_admin', true) = 'on'
        OR EXISTS (
            SELECT 1 FROM collaboration.notes n
            WHERE n.tenant_id = grants.tenant_id AND n.id = grants.note_id AND n.author_id = current_setting('app.user_id', true))));
CREATE POLICY grant_delete ON collaboration.grants FOR DELETE USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        current_setting('app.user_admin', true) = 'on'
        OR EXISTS (
            SELECT 1 FROM collaboration.notes n
            WHERE n.tenant_id = grants.tenant_id AND n.id = grants.note_id AND n.author_id = current_setting('app.user_id', true))));

-- Comments: on a record, the tenant's; on a note, readable by whoever may read the note (the subquery is itself
-- under note_read). Written as oneself; changed only by the author or an admin.
CREATE POLICY comment_read ON collaboration.comments FOR SELECT USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        note_id IS NULL
        OR EXISTS (SELECT 1 FROM collaboration.notes n WHERE n.tenant_id = comments.tenant_id AND n.id = comments.note_id)));
CREATE POLICY comment_insert ON collaboration.comments FOR INSERT WITH CHECK (
    tenant_id = current_setting('app.tenant_id', true) AND author_id = current_setting('app.user_id', true) AND (
        note_id IS NULL
        OR EXISTS (SELECT 1 FROM collaboration.notes n WHERE n.tenant_id = comments.tenant_id AND n.id = comments.note_id)));
CREATE POLICY comment_update ON collaboration.comments FOR UPDATE USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        current_setting('app.user_admin', true) = 'on' OR author_id = current_setting('app.user_id', true)))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Notifications: readable by their audience and their sender; any writer of the tenant may insert (the service
-- decides the audience).
CREATE POLICY notification_read ON collaboration.notifications FOR SELECT USING (
    tenant_id = current_setting('app.tenant_id', true) AND (
        tenant_wide
        OR current_setting('app.user_id', true) = ANY (user_ids)
        OR team_id IN (SELECT collaboration.caller_teams())
        OR created_by = current_setting('app.user_id', true)));
CREATE POLICY notification_insert ON collaboration.notifications FOR INSERT WITH CHECK (
    tenant_id = current_setting('app.tenant_id', true));

-- Per-user state and preferences: one's own only.
CREATE POLICY own_rows ON collaboration.notification_states
    USING (tenant_id = current_setting('app.tenant_id', true) AND user_id = current_setting('app.user_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true) AND user_id = current_setting('app.user_id', true));
CREATE POLICY own_rows ON collaboration.notification_preferences
    USING (tenant_id = current_setting('app.tenant_id', true) AND user_id = current_setting('app.user_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true) AND user_id = current_setting('app.user_id', true));
