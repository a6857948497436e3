-- A local time that occurs twice (the hour repeated when daylight saving ends) is the earlier of its two instants, as
-- RFC 5545 and common calendars read it; PostgreSQL's `AT TIME ZONE` takes the later. A local time the zone skips (the
-- hour lost when it begins) stays as PostgreSQL moves it, forward by the gap, as RFC 5545 says too. Zones shift by an
-- hour or, on Lord Howe Island, by half of one: an instant that much earlier with the same wall clock is the earlier
-- reading. The first occurrence is the meeting's own start, whatever its wall clock reads.
CREATE FUNCTION collaboration.local_instant(local timestamp, zone text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN ((t - interval '1 hour') AT TIME ZONE zone) = local THEN t - interval '1 hour'
        WHEN ((t - interval '30 minutes') AT TIME ZONE zone) = local THEN t - interval '30 minutes'
        ELSE t END
    FROM (SELECT local AT TIME ZONE zone AS t) x
$$;

CREATE OR REPLACE FUNCTION collaboration.live_occurrences(m collaboration.meetings, dates date[], micros bigint)
RETURNS TABLE (occurrence integer, start_at timestamptz, end_at timestamptz) LANGUAGE sql STABLE AS $$
    SELECT o.occurrence, coalesce(e.start_at, o.start_at), coalesce(e.end_at, o.start_at + (m.end_at - m.start_at))
    FROM (SELECT (u.n - 1)::integer AS occurrence,
              CASE WHEN u.n = 1 THEN m.start_at
                   ELSE collaboration.local_instant(u.d + micros * interval '1 microsecond', m.time_zone) END AS start_at
          FROM unnest(dates) WITH ORDINALITY AS u(d, n)) o
    LEFT JOIN collaboration.meeting_exceptions e
        ON e.tenant_id = m.tenant_id AND e.meeting_id = m.id AND e.occurrence = o.occurrence
    WHERE e.occurrence IS NULL OR e.start_at IS NOT NULL
$$;
