-- A contact's communication preferences (GetContactPreferences, UpdateContactPreferences): at most one row per
-- contact, written in place (the change feed keeps the history). do_not_contact refuses every send; quiet hours hold
-- a due send until the window ends in the contact's time zone.
CREATE TABLE communication.preferences (
    tenant_id         text        NOT NULL,
    contact_id        uuid        NOT NULL,
    -- 0 none stated, else a channel (1 e-mail, 2 SMS, 3 call).
    preferred_channel smallint    NOT NULL DEFAULT 0 CHECK (preferred_channel BETWEEN 0 AND 3),
    language          text        NOT NULL DEFAULT '' CHECK (length(language) <= 35),
    time_zone         text        NOT NULL DEFAULT '' CHECK (length(time_zone) <= 64),
    quiet_start       time,
    quiet_end         time,
    do_not_contact    boolean     NOT NULL DEFAULT false,
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text        NOT NULL,
    PRIMARY KEY (tenant_id, contact_id),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
    CHECK (quiet_start IS NULL OR (quiet_start <> quiet_end AND time_zone <> ''))
);

ALTER TABLE communication.preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE communication.preferences FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON communication.preferences
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- When a window of local times [start, end) that holds `at` in `zone` ends, as an instant; NULL when `at` is outside
-- it (or no window is set). A window may span midnight. The local end is turned back into an instant in the same
-- zone, so a daylight-saving change inside the window moves the end with the wall clock, as the person reads it.
CREATE FUNCTION communication.quiet_until(zone text, start_at time, end_at time, at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN start_at IS NULL OR end_at IS NULL OR zone = '' THEN NULL
        WHEN start_at < end_at THEN
            CASE WHEN local::time >= start_at AND local::time < end_at THEN (local::date + end_at) AT TIME ZONE zone END
        WHEN local::time >= start_at THEN (local::date + 1 + end_at) AT TIME ZONE zone
        WHEN local::time < end_at THEN (local::date + end_at) AT TIME ZONE zone
    END
    FROM (SELECT at AT TIME ZONE zone AS local) l
$$;

-- The merge log remembers the winner's preferences as they were before a MERGED combined the loser's into them (NULL:
-- none were stored) and as the merge wrote them: UNMERGED puts back each field still as the merge wrote it.
ALTER TABLE communication.merges ADD COLUMN preferences_merged boolean NOT NULL DEFAULT false, ADD COLUMN preferences_before jsonb,
    ADD COLUMN preferences_after jsonb;
