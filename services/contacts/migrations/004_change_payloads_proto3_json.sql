-- Change events published before the service kit carried the contact as Swift's JSONEncoder wrote ContactRecord
-- ({"id", "data": {...}, "version", "createdAt": seconds since 2001, ...}). The contract is the proto3 JSON of
-- switchboard.contacts.v1.Contact, as json_format prints it; this rewrites every stored event of the old shape into
-- it, so consumers replaying history see one shape. Rows are recognised by their top-level "data" key, which a
-- Contact's JSON never has.
SET LOCAL client_min_messages = warning;

CREATE FUNCTION contacts.legacy_time(seconds_since_2001 double precision) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') ||
           CASE WHEN us = 0 THEN '' WHEN us % 1000 = 0 THEN '.' || lpad((us / 1000)::text, 3, '0')
                ELSE '.' || lpad(us::text, 6, '0') END || 'Z'
    FROM (SELECT t, (extract(microseconds FROM t)::bigint % 1000000) AS us
          FROM (SELECT to_timestamp(978307200 + seconds_since_2001) AS t) x) y
$$;

-- Drops keys whose value is a proto3 default ("", false, 0, [], {}), as json_format omits them.
CREATE FUNCTION contacts.legacy_strip(o jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(o)
    WHERE value NOT IN ('""'::jsonb, 'false'::jsonb, '0'::jsonb, '[]'::jsonb, '{}'::jsonb, 'null'::jsonb)
$$;

-- name, customFields and audit are always set by the service, so they are printed even when empty.
CREATE FUNCTION contacts.legacy_contact(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT contacts.legacy_strip(jsonb_build_object(
        'id', lower(r->>'id'),
        'emails', coalesce((SELECT jsonb_agg(contacts.legacy_strip(jsonb_build_object(
            'address', e->>'address', 'label', e->>'label', 'primary', coalesce((e->>'primary')::boolean, false))))
            FROM jsonb_array_elements(d->'emails') e), '[]'),
        'phones', coalesce((SELECT jsonb_agg(contacts.legacy_strip(jsonb_build_object(
            'number', p->>'number', 'label', p->>'label', 'primary', coalesce((p->>'primary')::boolean, false),
            'e164', p->>'e164')))
            FROM jsonb_array_elements(d->'phones') p), '[]'),
        'addresses', coalesce((SELECT jsonb_agg(contacts.legacy_strip(jsonb_build_object(
            'label', a->>'label', 'addressLines', coalesce(a->'lines', '[]'), 'locality', a->>'locality',
            'administrativeArea', a->>'administrativeArea', 'postalCode', a->>'postalCode', 'regionCode', a->>'regionCode')))
            FROM jsonb_array_elements(d->'addresses') a), '[]'),
        'type', CASE (d->>'kind')::int WHEN 1 THEN 'CONTACT_TYPE_PERSON' WHEN 2 THEN 'CONTACT_TYPE_COMPANY' END,
        'status', CASE (d->>'status')::int WHEN 1 THEN 'CONTACT_STATUS_LEAD' WHEN 2 THEN 'CONTACT_STATUS_PROSPECT'
                  WHEN 3 THEN 'CONTACT_STATUS_CUSTOMER' WHEN 4 THEN 'CONTACT_STATUS_INACTIVE' END,
        'tags', coalesce(d->'tags', '[]'),
        'ownerId', d->>'ownerID',
        'etag', '"' || (r->>'version') || '"'))
    || jsonb_build_object(
        'name', contacts.legacy_strip(jsonb_build_object(
            'given', n->>'given', 'family', n->>'family', 'middle', n->>'middle', 'prefix', n->>'prefix',
            'suffix', n->>'suffix',
            'display', CASE WHEN coalesce(n->>'display', '') <> '' THEN n->>'display'
                            ELSE concat_ws(' ', nullif(n->>'prefix', ''), nullif(n->>'given', ''), nullif(n->>'middle', ''),
                                           nullif(n->>'family', ''), nullif(n->>'suffix', '')) END)),
        'customFields', coalesce(d->'customFields', '{}'),
        'audit', contacts.legacy_strip(jsonb_build_object(
            'createTime', contacts.legacy_time((r->>'createdAt')::double precision), 'createdBy', r->>'createdBy',
            'updateTime', contacts.legacy_time((r->>'updatedAt')::double precision), 'updatedBy', r->>'updatedBy',
            'deleteTime', CASE WHEN jsonb_typeof(r->'deletedAt') = 'number'
                               THEN contacts.legacy_time((r->>'deletedAt')::double precision) END)))
    FROM (SELECT r->'data' AS d, r->'data'->'name' AS n) x
$$;

-- The service's role owns the table; lifting FORCE for this transaction lets it reach every tenant's rows.
ALTER TABLE contacts.changes NO FORCE ROW LEVEL SECURITY;
UPDATE contacts.changes SET resource = contacts.legacy_contact(resource)
WHERE resource_type = 'switchboard.contacts.v1.Contact' AND resource ? 'data';
ALTER TABLE contacts.changes FORCE ROW LEVEL SECURITY;

DROP FUNCTION contacts.legacy_contact(jsonb);
DROP FUNCTION contacts.legacy_strip(jsonb);
DROP FUNCTION contacts.legacy_time(double precision);
