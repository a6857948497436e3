-- Monthly recurrence and exceptions to a series (one occurrence cancelled or moved).

-- Frequency 3: monthly. The occurrences' local dates are now stepped by the service (MeetingRules'
-- Recurrence.occurrenceDates, unit-tested: daily, weekly, monthly with the 29th-31st on the last day of shorter months)
-- and only turned into instants here, with the zone's rules; collaboration.occurrences, which stepped them in SQL,
-- goes.
ALTER TABLE collaboration.meetings DROP CONSTRAINT meetings_recurrence_frequency_check;
ALTER TABLE collaboration.meetings ADD CONSTRAINT meetings_recurrence_frequency_check CHECK (recurrence_frequency BETWEEN 0 AND 3);
DROP FUNCTION collaboration.occurrences(timestamptz, timestamptz, text, smallint, integer, integer);

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

-- The occurrences of the meeting row m as they take place: occurrence i on local date dates[i + 1] at local time of
-- day micros (microseconds) in m's time zone (so 09:00 Europe/Berlin stays 09:00 across a daylight-saving change), as
-- long as m; then the exceptions: cancelled ones left out, moved ones at their own times. Calendar, contact and
-- reminder rows are made from these, so lists, conflicts, free slots and reminders follow.
CREATE FUNCTION collaboration.live_occurrences(m collaboration.meetings, dates date[], micros bigint)
RETURNS TABLE (occurrence integer, start_at timestamptz, end_at timestamptz) LANGUAGE sql STABLE AS $$
    SELECT o.occurrence, coalesce(e.start_at, o.start_at), coalesce(e.end_at, o.start_at + (m.end_at - m.start_at))
    FROM (SELECT (u.n - 1)::integer AS occurrence, (u.d + micros * interval '1 microsecond') AT TIME ZONE m.time_zone AS start_at
          FROM unnest(dates) WITH ORDINALITY AS u(d, n)) o
    LEFT JOIN collaboration.meeting_exceptions e
        ON e.tenant_id = m.tenant_id AND e.meeting_id = m.id AND e.occurrence = o.occurrence
    WHERE e.occurrence IS NULL OR e.start_at IS NOT NULL
$$;
