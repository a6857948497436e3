#!/usr/bin/env bash
# SearchContacts through the contacts service (h2load, gRPC over HTTP/2, JWT auth, RLS) at 1,000,000 contacts in one
# tenant (plus 200,000 in another), side by side with pgbench running the naive reference: a trigram-indexed ILIKE
# over the same rows. 8 concurrent clients each.
#   Benchmarks/search.sh     (BENCH_SECONDS=10 per run, BENCH_ROUNDS=3 → A B A B ..., BENCH_CONTACTS=1000000)
# Searches: "typo" (two words with typos: "jon smth"), "prefix" (one short word: "mar", many hits), "facets" (one
# word with status, tag and owner facets over every hit), "facets-other" (the same as the tenant of 200,000 contacts:
# a mid-size tenant, whose plan differs), "browse" and "browse-other" (no text, the same three facets: a tenant's every
# contact, as a contact list's first page asks for it, for each tenant), "duplicates" (FindDuplicateContacts of a John
# Smith: its phone lookup and its name's and mailbox name's ranked searches, scored; its name's typo neighbours, Jon
# and Smyth, make its name search one of the heavier ones). The reference: ILIKE '%smith%'
# and ILIKE '%mar%' with a pg_trgm GIN index, newest 20 first (it finds no typos).
# BENCH_SECOND_BIN (e.g. the contacts binary of an earlier commit, built with `swift build -c release`) runs beside the
# new one on the same database, every search of each round interleaved, named BENCH_SECOND_NAME (default "before").
# BENCH_SECOND_ENV (e.g. "SWITCHBOARD_CONTACTS_FACET_SEARCHES_AT_ONCE=8") is set for the second binary only, and
# BENCH_SECOND_BIN may be the same binary: one setting against another. BENCH_SEARCHES picks the searches (default
# "typo prefix facets facets-other browse browse-other"; "duplicates" is asked for by name, as a contacts binary from
# before FindDuplicateContacts answers it UNIMPLEMENTED; the naive reference runs after each of the first two).
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONTACTS="${BENCH_CONTACTS:-1000000}"
PORT=50075
SECOND_PORT=50076
SECOND_BIN="${BENCH_SECOND_BIN:-}"
SECOND="${BENCH_SECOND_NAME:-before}"
read -ra SECOND_ENV <<<"${BENCH_SECOND_ENV:-}"
SEARCHES=" ${BENCH_SEARCHES:-typo prefix facets facets-other browse browse-other} "
WORK="$(mktemp -d)"
SVC_PID=
SECOND_PID=
trap '[ -n "$SVC_PID" ] && kill $SVC_PID 2>/dev/null; [ -n "$SECOND_PID" ] && kill $SECOND_PID 2>/dev/null; rm -rf "$WORK"' EXIT

swift build -c release --static-swift-stdlib --product contacts >&2
swift build -c release --static-swift-stdlib --product crmctl >&2
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
DB=switchboard_bench_search
psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $DB"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
psql "$DBADMIN" -q -v DBNAME=$DB -f services/contacts/provision.sql >/dev/null
SERVICE_URL="host=127.0.0.1 port=${SWITCHBOARD_PG_PORT:-54329} dbname=$DB user=contacts_service"
SECRET=bench-secret-0123456789abcdef0123456789
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/contacts" migrate >/dev/null

# Names drawn from short lists, so a word matches a realistic share of the contacts ("smith": 1 in 150 family names),
# unique e-mail addresses (a million distinct words), tags, owners and an enum custom field. Loaded as the
# administrator (bulk INSERT sidesteps RLS; the trigger computes every contact's words), then the tenant's words.
load() { # load <tenant> <count>
    local have
    have="$(psql "$DBADMIN" -qtAc "SELECT count(*) FROM contacts.contacts WHERE tenant_id = '$1'")"
    [ "$have" -ge "$2" ] && return
    echo "loading $(($2 - have)) contacts for $1..." >&2
    psql "$DBADMIN" -qc "
        WITH g AS (SELECT g,
            (ARRAY['John','Jon','Jane','Mary','Maria','Mario','Marc','Mark','Martin','Michael','Ahmed','Wei','Yuki','Olga',
                   'Pierre','Hans','Sofia','Lucas','Emma','Noah','Liam','Ava','Mia','Amelia','Omar','Fatima','Ivan','Anna',
                   'Peter','Paul','Laura','Sara','David','Daniel','James','Robert','Linda','Susan','Karen','Nancy'])[1 + g % 40] AS given,
            (ARRAY['Smith','Smyth','Johnson','Williams','Brown','Jones','Garcia','Miller','Davis','Rodriguez','Martinez',
                   'Hernandez','Lopez','Gonzalez','Wilson','Anderson','Thomas','Taylor','Moore','Jackson','Martin','Lee',
                   'Perez','Thompson','White','Harris','Sanchez','Clark','Ramirez','Lewis','Robinson','Walker','Young',
                   'Allen','King','Wright','Scott','Torres','Nguyen','Hill','Flores','Green','Adams','Nelson','Baker',
                   'Hall','Rivera','Campbell','Mitchell','Carter','Roberts','Muller','Schmidt','Schneider','Fischer',
                   'Weber','Meyer','Wagner','Becker','Schulz','Hoffmann','Koch','Richter','Klein','Wolf','Schroeder',
                   'Neumann','Schwarz','Zimmermann','Braun','Kruger','Hofmann','Hartmann','Lange','Schmitt','Werner',
                   'Krause','Meier','Lehmann','Schmid','Dubois','Durand','Leroy','Moreau','Simon','Laurent','Lefebvre',
                   'Michel','Bertrand','Roux','Vincent','Fournier','Morel','Girard','Andre','Mercier','Dupont','Lambert',
                   'Bonnet','Francois','Rossi','Russo','Ferrari','Esposito','Bianchi','Romano','Colombo','Ricci','Marino',
                   'Greco','Bruno','Gallo','Conti','DeLuca','Mancini','Costa','Giordano','Rizzo','Lombardi','Moretti',
                   'Tanaka','Suzuki','Takahashi','Watanabe','Ito','Yamamoto','Nakamura','Kobayashi','Kato','Yoshida',
                   'Wang','Li','Zhang','Liu','Chen','Yang','Huang','Zhao','Wu','Zhou','Ivanov','Petrov','Sidorov',
                   'Popov','Kuznetsov','Sokolov','Lebedev','Kozlov','Novikov','Morozov'])[1 + (g / 40) % 150] AS family
            FROM generate_series($have + 1, $2) g)
        INSERT INTO contacts.contacts (tenant_id, id, given_name, family_name, emails, phones, contact_type, status, tags, owner_id,
            custom_fields, created_at, created_by, updated_at, updated_by)
        SELECT '$1', gen_random_uuid(), given, family,
            jsonb_build_array(jsonb_build_object('address', lower(given || '.' || family || g || '@company' || g % 1000 || '.com'),
                'label', '', 'primary', true)),
            jsonb_build_array(jsonb_build_object('number', '+1 555 ' || lpad((g % 10000000)::text, 7, '0'), 'label', '',
                'primary', true, 'e164', '+1555' || lpad((g % 10000000)::text, 7, '0'))),
            1, 1 + g % 4, ARRAY['tag' || g % 50, 'segment' || g % 7], 'owner' || g % 50,
            jsonb_build_object('region', (ARRAY['north','south','east','west'])[1 + g % 4]),
            now() - (g || ' seconds')::interval, 'loader', now(), 'loader'
        FROM g;
        INSERT INTO contacts.search_terms (tenant_id, term)
            SELECT DISTINCT '$1', w FROM contacts.contacts, unnest(tsvector_to_array(search_words)) AS w WHERE tenant_id = '$1'
            ORDER BY 2 ON CONFLICT DO NOTHING;
        ANALYZE contacts.contacts; ANALYZE contacts.search_terms;"
    # Vacuumed once loaded, as autovacuum would soon do: otherwise its first pass over the new rows (and their hint
    # bits, set by the first reads) lands in the first round (2026-12-06: typo p99 30 ms on the fresh table, 20 ms on
    # the same table vacuumed).
    psql "$DBADMIN" -qc "VACUUM contacts.contacts" -c "VACUUM contacts.search_terms"
}
load bench "$CONTACTS"
load other $((CONTACTS / 5))
# The reference's index: trigrams of the same text a naive search would scan.
psql "$DBADMIN" -qc "CREATE INDEX IF NOT EXISTS bench_naive_trigram ON contacts.contacts USING gin
    (lower(given_name || ' ' || family_name || ' ' || emails::text) gin_trgm_ops) WHERE deleted_at IS NULL"

SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
    SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning "$BIN/contacts" >"$WORK/service.log" 2>&1 &
SVC_PID=$!
if [ -n "$SECOND_BIN" ]; then
    SWITCHBOARD_GRPC_PORT=$SECOND_PORT SWITCHBOARD_ADMIN_PORT=0 SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_DB_POOL_SIZE=8 \
        SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_LOG_LEVEL=warning env "${SECOND_ENV[@]}" "$SECOND_BIN" >"$WORK/second.log" 2>&1 &
    SECOND_PID=$!
fi
sleep 3
TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant bench --user bench --roles read-only --ttl 86400)"
OTHER_TOKEN="$("$BIN/crmctl" token --secret $SECRET --tenant other --user bench --roles read-only --ttl 86400)"

# A John Smith of the big tenant (every name pair is as common, 1 in 6,000; John and Smith have typo neighbours in the
# lists, Jon and Smyth, so its name search ranks more candidates than most).
DUPLICATE_OF="$(psql "$DBADMIN" -qtAc "SELECT id FROM contacts.contacts WHERE tenant_id = 'bench' AND given_name = 'John'
    AND family_name = 'Smith' AND deleted_at IS NULL ORDER BY id LIMIT 1")"
PYTHONPATH=Benchmarks python3 - "$WORK" "$DUPLICATE_OF" <<'PY'
import sys
from grpc_frames import field, frame, number, varint
work = sys.argv[1]
# FindDuplicateContactsRequest{contact_id, max_results: 10}
open(f"{work}/duplicates.bin", "wb").write(frame(field(1, sys.argv[2].encode()) + bytes([2 << 3]) + varint(10)))
page = field(2, bytes([1 << 3]) + varint(20))  # PageRequest{page_size: 20}
open(f"{work}/typo.bin", "wb").write(frame(field(1, b"jon smth") + page))
open(f"{work}/prefix.bin", "wb").write(frame(field(1, b"mar") + page))
facets = field(14, b"status") + field(14, b"tag") + field(14, b"owner_id")
open(f"{work}/facets.bin", "wb").write(frame(field(1, b"garcia") + page + facets))
open(f"{work}/browse.bin", "wb").write(frame(page + facets))
PY

for word in smith mar; do
    cat > "$WORK/naive-$word.sql" <<SQL
BEGIN;
SELECT set_config('app.tenant_id', 'bench', true);
SELECT id, given_name, family_name, emails::text, created_at FROM contacts.contacts
WHERE tenant_id = 'bench' AND deleted_at IS NULL AND lower(given_name || ' ' || family_name || ' ' || emails::text) LIKE '%$word%'
ORDER BY created_at DESC LIMIT 20;
COMMIT;
SQL
done

method() { # method <search>: the RPC's path
    if [ "$1" = duplicates ]; then echo /switchboard.contacts.v1.ContactsService/FindDuplicateContacts
    else echo /switchboard.contacts.v1.ContactsService/SearchContacts; fi
}
H2=(-c 8 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers')
cp "$WORK/facets.bin" "$WORK/facets-other.bin"
cp "$WORK/browse.bin" "$WORK/browse-other.bin"
token() { # token <search>: the bearer token of the search's tenant
    if [[ "$1" == *-other ]]; then echo "$OTHER_TOKEN"; else echo "$TOKEN"; fi
}
# h2load counts gRPC errors as successes: check one call of each answers grpc-status 0, and show what it found.
for port in $PORT ${SECOND_BIN:+$SECOND_PORT}; do
    for body in typo prefix facets facets-other browse browse-other duplicates; do
        [[ "$SEARCHES" == *" $body "* ]] || continue
        out="$(nghttp -v --data="$WORK/$body.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $(token $body)" "http://127.0.0.1:$port$(method $body)" 2>&1)"
        echo "$out" | grep -q "grpc-status: 0" || { echo "$body failed on port $port:"; echo "$out" | tail -5; exit 1; } >&2
    done
done

run_h2() { # run_h2 <name> <body> [port]
    rm -f "$WORK/log"
    local out
    out="$(h2load -D "$SECONDS_PER_RUN" "${H2[@]}" -H "authorization: Bearer $(token "$2")" --data="$WORK/$2.bin" --log-file="$WORK/log" "http://127.0.0.1:${3:-$PORT}$(method "$2")")"
    python3 - "$1" "$WORK/log" "$SECONDS_PER_RUN" "$out" <<'PY'
import sys, re
name, log, secs, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ok = int(re.search(r"(\d+) succeeded", out).group(1))
d = sorted(int(l.split()[2]) for l in open(log) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
print(f"RESULT {name} tps={ok / secs:.0f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f}")
PY
}

run_pgbench() { # run_pgbench <name> <script>
    rm -rf "$WORK/pglog" && mkdir "$WORK/pglog"
    (cd "$WORK/pglog" && pgbench -n -c 8 -j 2 -T "$SECONDS_PER_RUN" -M prepared -l -f "$WORK/$2.sql" "$SERVICE_URL" >/dev/null 2>&1)
    python3 - "$1" "$WORK/pglog" "$SECONDS_PER_RUN" <<'PY'
import sys, os
name, logs, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
d = sorted(int(l.split()[2]) for f in os.listdir(logs) for l in open(os.path.join(logs, f)) if l.strip())
p = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000.0
print(f"RESULT {name} tps={len(d) / secs:.0f} p50_ms={p(0.5):.3f} p99_ms={p(0.99):.3f}")
PY
}

RESULTS="$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    for body in typo prefix facets facets-other browse browse-other duplicates; do
        [[ "$SEARCHES" == *" $body "* ]] || continue
        run_h2 "service-$body" $body | tee -a "$RESULTS"
        [ -n "$SECOND_BIN" ] && run_h2 "$SECOND-$body" $body $SECOND_PORT | tee -a "$RESULTS"
        case $body in
        typo) run_pgbench naive-smith naive-smith | tee -a "$RESULTS" ;;
        prefix) run_pgbench naive-mar naive-mar | tee -a "$RESULTS" ;;
        esac
    done
done
python3 Benchmarks/summary.py "$RESULTS" service-typo:naive-smith service-prefix:naive-mar service-facets:naive-smith \
    service-typo:"$SECOND-typo" service-prefix:"$SECOND-prefix" service-facets:"$SECOND-facets" \
    service-facets-other:"$SECOND-facets-other" service-browse:"$SECOND-browse" service-browse-other:"$SECOND-browse-other" \
    service-duplicates:"$SECOND-duplicates"
