-- Recurring meetings: every occurrence has its own calendar, contact and reminder rows, so conflicts, free slots,
-- lists and reminders see each one as a meeting of its own.
ALTER TABLE collaboration.meetings
    ADD COLUMN recurrence_frequency smallint NOT NULL DEFAULT 0 CHECK (recurrence_frequency BETWEEN 0 AND 2),
    ADD COLUMN recurrence_interval  integer  NOT NULL DEFAULT 1 CHECK (recurrence_interval BETWEEN 1 AND 52),
    ADD COLUMN recurrence_count     integer  NOT NULL DEFAULT 1 CHECK (recurrence_count BETWEEN 1 AND 100);
ALTER TABLE collaboration.meeting_attendees ADD COLUMN occurrence integer NOT NULL DEFAULT 0;
ALTER TABLE collaboration.meeting_contacts ADD COLUMN occurrence integer NOT NULL DEFAULT 0;
ALTER TABLE collaboration.meeting_reminders ADD COLUMN occurrence integer NOT NULL DEFAULT 0;
ALTER TABLE collaboration.meeting_reminders DROP CONSTRAINT meeting_reminders_pkey;
ALTER TABLE collaboration.meeting_reminders ADD PRIMARY KEY (tenant_id, meeting_id, occurrence, minutes);

-- The occurrences of a meeting: the first one's local wall-clock start in the time zone, stepped by days or weeks
-- (so 09:00 Europe/Berlin stays 09:00 across a daylight-saving change), each as long as the first.
-- $1 start, $2 end, $3 time zone, $4 frequency (0 none, 1 daily, 2 weekly), $5 interval, $6 count.
CREATE FUNCTION collaboration.occurrences(timestamptz, timestamptz, text, smallint, integer, integer)
RETURNS TABLE (occurrence integer, start_at timestamptz, end_at timestamptz) LANGUAGE sql STABLE AS $$
    SELECT g,
        (($1 AT TIME ZONE $3) + g * $5 * CASE $4 WHEN 2 THEN interval '7 days' ELSE interval '1 day' END) AT TIME ZONE $3,
        (($1 AT TIME ZONE $3) + g * $5 * CASE $4 WHEN 2 THEN interval '7 days' ELSE interval '1 day' END) AT TIME ZONE $3 + ($2 - $1)
    FROM generate_series(0, CASE WHEN $4 = 0 THEN 0 ELSE $6 - 1 END) AS g
$$;
