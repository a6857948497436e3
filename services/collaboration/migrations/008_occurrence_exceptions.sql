-- Monthly recurrence and exceptions to a series (one occurrence cancelled or moved).

-- Frequency 3: monthly. Adding N months to a local time keeps its day of the month, or takes the month's last day
-- when the month is shorter; the step is counted from the first occurrence, so January 31 gives February 28 (29),
-- March 31, April 30, never drifting to the 28th.
ALTER TABLE collaboration.meetings DROP CONSTRAINT meetings_recurrence_frequency_check;
ALTER TABLE collaboration.meetings ADD CONSTRAINT meetings_recurrence_frequency_check CHECK (recurrence_frequency BETWEEN 0 AND 3);

-- The occurrences of a series by its rule (exceptions not applied): the first one's local wall-clock start in the
-- time zone, stepped by days, weeks or months, each as long as the first.
-- $1 start, $2 end, $3 time zone, $4 frequency (0 none, 1 daily, 2 weekly, 3 monthly), $5 interval, $6 count.
CREATE OR REPLACE FUNCTION collaboration.occurrences(timestamptz, timestamptz, text, smallint, integer, integer)
RETURNS TABLE (occurrence integer, start_at timestamptz, end_at timestamptz) LANGUAGE sql STABLE AS $$
    SELECT g, l.local_start AT TIME ZONE $3, (l.local_start AT TIME ZONE $3) + ($2 - $1)
    FROM generate_series(0, CASE WHEN $4 = 0 THEN 0 ELSE $6 - 1 END) AS g,
        LATERAL (SELECT ($1 AT TIME ZONE $3) + g * $5 * CASE $4 WHEN 2 THEN interval '7 days' WHEN 3 THEN interval '1 month'
            ELSE interval '1 day' END) AS l(local_start)
$$;

-- One row per occurrence that differs from the rule: cancelled (no times) or moved (its own times, as long as a
-- meeting may be). At most one per occurrence, so a series has at most its count of them.
CREATE TABLE collaboration.meeting_exceptions (
    tenant_id  text        NOT NULL,
    meeting_id uuid        NOT NULL,
    occurrence integer     NOT NULL CHECK (occurrence >= 0),
    start_at   timestamptz,
    end_at     timestamptz,
    PRIMARY KEY (tenant_id, meeting_id, occurrence),
    FOREIGN KEY (tenant_id, meeting_id) REFERENCES collaboration.meetings (tenant_id, id) ON DELETE CASCADE,
    CHECK ((start_at IS NULL) = (end_at IS NULL)),
    CHECK (start_at IS NULL OR (end_at > start_at AND end_at <= start_at + interval '14 days'))
);
ALTER TABLE collaboration.meeting_exceptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE collaboration.meeting_exceptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON collaboration.meeting_exceptions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- The occurrences of the meeting row m as they take place: cancelled ones left out, moved ones at their own times.
-- Calendar, contact and reminder rows are made from these, so lists, conflicts, free slots and reminders follow.
CREATE FUNCTION collaboration.live_occurrences(m collaboration.meetings)
RETURNS TABLE (occurrence integer, start_at timestamptz, end_at timestamptz) LANGUAGE sql STABLE AS $$
    SELECT o.occurrence, coalesce(e.start_at, o.start_at), coalesce(e.end_at, o.end_at)
    FROM collaboration.occurrences(m.start_at, m.end_at, m.time_zone, m.recurrence_frequency, m.recurrence_interval,
        m.recurrence_count) o
    LEFT JOIN collaboration.meeting_exceptions e
        ON e.tenant_id = m.tenant_id AND e.meeting_id = m.id AND e.occurrence = o.occurrence
    WHERE e.occurrence IS NULL OR e.start_at IS NOT NULL
$$;
