#!/usr/bin/env bash
# The collaboration service (release build), as the service's role under row-level security, driven by grpcio clients:
#   transfer  a BENCH_FILE_MIB (50) MiB random file uploaded (UploadFile, client stream, 256 KiB chunks, declared SHA-256)
#             and downloaded (DownloadFile, server stream) BENCH_ROUNDS times; each download compared byte for byte with
#             what was sent. MiB/s each way, and the service's peak RSS during each direction (VmHWM, reset through
#             /proc/<pid>/clear_refs before each one) beside its RSS before the transfer;
#   fan-out   BENCH_SUBSCRIBERS (1,000) users of one tenant (a token each, role read-only) with one SubscribeNotifications
#             stream each, multiplexed over BENCH_SUBSCRIBER_CONNECTIONS (20) HTTP/2 connections (the service
#             allows 100 streams a connection); then BENCH_NOTIFICATIONS (50) tenant-wide CreateNotification calls
#             (an admin), one at a time, each after the previous one reached every stream: the time from the call to
#             the first and to the last of the 1,000 deliveries (p50/p99), and the call's own latency; every stream
#             must receive every notification once, in order;
#   idle      the service's RSS 3 s after start (migrated, no call yet) over BENCH_IDLE_STARTS (5) starts (target < 30 MB).
#   Benchmarks/collaboration.sh   (BENCH_ROUNDS=5, BENCH_SKIP_BUILD=1 uses the release binary as it is)
# Not part of the test suite. Needs psql and the grpcio venv (scripts/bootstrap.sh). Results and how they were taken:
# BENCHMARKS.md, "The collaboration service".
set -Eeuo pipefail
# A failed step says which (under -e a script otherwise stops without a word, e.g. on a `curl -f` of a setup request).
trap 'rc=$?; echo "${0##*/}: line $LINENO failed (exit $rc): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
ROUNDS="${BENCH_ROUNDS:-5}"
FILE_MIB="${BENCH_FILE_MIB:-50}"
SUBSCRIBERS="${BENCH_SUBSCRIBERS:-1000}"
CONNECTIONS="${BENCH_SUBSCRIBER_CONNECTIONS:-20}"
NOTIFICATIONS="${BENCH_NOTIFICATIONS:-50}"
IDLE_STARTS="${BENCH_IDLE_STARTS:-5}"
PY="${SWITCHBOARD_PYTHON:-$PWD/.venv/bin/python}"
PORT=50084
WORK="$(mktemp -d)"
SVC_PID=
trap 'if [ -n "$SVC_PID" ]; then kill $SVC_PID 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

command -v psql >/dev/null || { echo "psql missing (apt-get install postgresql-client)" >&2; exit 1; }
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then swift build -c release --static-swift-stdlib --product collaboration >&2; fi
BIN="$(swift build -c release --show-bin-path)"
ADMIN="$(scripts/postgres.sh start)"
PGPORT_="${SWITCHBOARD_PG_PORT:-54329}"
SECRET=bench-secret-0123456789abcdef0123456789
STUBS="$(SWITCHBOARD_PYTHON="$PY" Tests/Interop/gen_stubs.sh "$WORK/stubs")"

DB=sb_collaboration_bench
psql "$ADMIN" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$ADMIN" -qc "CREATE DATABASE $DB"
DBADMIN="${ADMIN/dbname=postgres/dbname=$DB}"
psql "$DBADMIN" -q -v DBNAME="$DB" -f services/collaboration/provision.sql >/dev/null
SERVICE_URL="host=127.0.0.1 port=$PGPORT_ dbname=$DB user=collaboration_service"
SWITCHBOARD_LOG_LEVEL=warning SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET "$BIN/collaboration" migrate >/dev/null
# Each run starts from an empty tenant (as the administrator, which row-level security does not restrict).
psql "$DBADMIN" -q -v ON_ERROR_STOP=1 <<'SQL'
DELETE FROM collaboration.file_chunks WHERE tenant_id = 'bench';
DELETE FROM collaboration.file_subjects WHERE tenant_id = 'bench';
DELETE FROM collaboration.files WHERE tenant_id = 'bench';
DELETE FROM collaboration.notification_states WHERE tenant_id = 'bench';
DELETE FROM collaboration.notifications WHERE tenant_id = 'bench';
DELETE FROM collaboration.changes WHERE tenant_id = 'bench';
DELETE FROM collaboration.idempotency_keys WHERE tenant_id = 'bench';
SQL

start_service() { # the service on $PORT; returns once it accepts connections
    env SWITCHBOARD_DATABASE_URL="$SERVICE_URL" SWITCHBOARD_JWT_HS256_SECRET=$SECRET SWITCHBOARD_GRPC_PORT=$PORT SWITCHBOARD_ADMIN_PORT=0 \
        SWITCHBOARD_LOG_LEVEL=error "$BIN/collaboration" >"$WORK/service.log" 2>&1 &
    SVC_PID=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the service did not start" >&2; cat "$WORK/service.log" >&2; exit 1
}
stop_service() { kill $SVC_PID; wait $SVC_PID 2>/dev/null || true; SVC_PID=; }

# Idle: started, 3 s, VmRSS; nothing has called it (the port probe only connects).
for ((start = 1; start <= IDLE_STARTS; start++)); do
    start_service
    sleep 3
    echo "RESULT idle start=$start rss_kib=$(awk '/^VmRSS/ {print $2}' /proc/$SVC_PID/status)"
    stop_service
done

start_service
SWITCHBOARD_INTEROP_STUBS="$STUBS" "$PY" - "$PORT" "$SECRET" "$SVC_PID" "$ROUNDS" "$FILE_MIB" "$SUBSCRIBERS" "$CONNECTIONS" \
    "$NOTIFICATIONS" <<'PY'
import asyncio, base64, hashlib, hmac, json, os, statistics, sys, time, uuid
sys.path.insert(0, os.environ["SWITCHBOARD_INTEROP_STUBS"])
import grpc
from sbproto.switchboard.collaboration.v1 import collaboration_pb2 as pb, collaboration_pb2_grpc as rpc
port, secret, pid = sys.argv[1], sys.argv[2], sys.argv[3]
rounds, file_mib, subscribers, connections, notifications = map(int, sys.argv[4:9])
target = f"127.0.0.1:{port}"

def token(user, roles):
    b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    header = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b(json.dumps({"sub": user, "tenant_id": "bench", "roles": roles, "exp": int(time.time()) + 86400}).encode())
    sig = b(hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())
    return (("authorization", f"Bearer {header}.{claims}.{sig}"),)

def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

def reset_peak():  # "5" resets VmHWM to the current RSS (Linux 4.0+)
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")

admin = token("bench-admin", ["admin"])
channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 8 << 20)])
stub = rpc.CollaborationServiceStub(channel)
for _ in range(50):  # the first call waits for the service to be ready
    try:
        stub.ListNotifications(pb.ListNotificationsRequest(), metadata=admin, timeout=2)
        break
    except grpc.RpcError:
        time.sleep(0.1)

# Transfer.
size = file_mib << 20
content = os.urandom(size)
digest = hashlib.sha256(content).hexdigest()
subject = pb.Subject(type=pb.SUBJECT_TYPE_CONTACT, id=str(uuid.uuid4()))
piece = 256 << 10
def parts():
    yield pb.UploadFileRequest(metadata=pb.UploadFileMetadata(request_id=str(uuid.uuid4()), file=pb.File(
        name="bench.bin", size_bytes=size, sha256=digest, subjects=[subject])))
    view = memoryview(content)
    for i in range(0, size, piece):
        yield pb.UploadFileRequest(chunk=bytes(view[i:i + piece]))
for r in range(1, rounds + 1):
    before = status("VmRSS")
    reset_peak()
    start = time.monotonic()
    stored = stub.UploadFile(parts(), metadata=admin, timeout=600)
    up = time.monotonic() - start
    up_peak = status("VmHWM")
    reset_peak()
    start = time.monotonic()
    offset, identical = 0, True
    for message in stub.DownloadFile(pb.DownloadFileRequest(id=stored.id), metadata=admin, timeout=600):
        data = message.data
        identical = identical and content[offset:offset + len(data)] == data
        offset += len(data)
    down = time.monotonic() - start
    down_peak = status("VmHWM")
    if not identical or offset != size:
        sys.exit(f"round {r}: the download differs from the upload ({offset} of {size} bytes)")
    print(f"RESULT transfer round={r} upload_mib_s={file_mib / up:.1f} download_mib_s={file_mib / down:.1f} "
          f"rss_before_kib={before} upload_peak_kib={up_peak} download_peak_kib={down_peak} "
          f"rss_after_kib={status('VmRSS')} identical=1", flush=True)
del content
channel.close()

# Fan-out.
async def fanout():
    base = grpc.aio.insecure_channel(target)
    notify = rpc.CollaborationServiceStub(base)
    # Subscribers start after the newest notification, so their backlog is empty.
    page = await notify.ListNotifications(pb.ListNotificationsRequest(), metadata=admin)
    after = page.notifications[0].id if page.notifications else 0
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1), ("grpc.channel_id", c)])
                for c in range(connections)]
    received = [dict() for _ in range(subscribers)]  # per subscriber: notification id -> monotonic receipt time
    order_ok = [True] * subscribers
    waiters = {}  # notification id -> [remaining count, future]
    async def subscriber(i):
        s = rpc.CollaborationServiceStub(channels[i % connections])
        call = s.SubscribeNotifications(pb.SubscribeNotificationsRequest(after_id=after),
                                        metadata=token(f"user-{i}", ["read-only"]))
        previous = after
        async for n in call:
            now = time.monotonic()
            if n.id <= previous or n.id in received[i]:
                order_ok[i] = False
            previous = n.id
            received[i][n.id] = now
            w = waiters.get(n.id)
            if w is not None:
                w[0] -= 1
                if w[0] == 0:
                    w[1].set_result(now)
    tasks = [asyncio.create_task(subscriber(i)) for i in range(subscribers)]

    async def announce(title):
        start = time.monotonic()
        made = await notify.CreateNotification(pb.CreateNotificationRequest(
            request_id=str(uuid.uuid4()), notification=pb.Notification(tenant_wide=True, title=title)), metadata=admin)
        answered = time.monotonic()
        # Deliveries may arrive before the call's answer: count those already in.
        future = asyncio.get_running_loop().create_future()
        remaining = subscribers - sum(1 for r in received if made.id in r)
        waiters[made.id] = [remaining, future]
        if remaining == 0:
            future.set_result(time.monotonic())
        await asyncio.wait_for(future, 120)
        times = [r[made.id] for r in received]
        return made.id, start, answered, min(times), max(times)

    # A first notification shows every stream open and past its (empty) backlog.
    t0 = time.monotonic()
    await announce("warm-up")
    print(f"RESULT fanout_open subscribers={subscribers} connections={connections} seconds_to_first_delivery_everywhere="
          f"{time.monotonic() - t0:.2f} service_rss_kib={status('VmRSS')}", flush=True)
    reset_peak()
    first, last_, call = [], [], []
    for k in range(notifications):
        _, start, answered, earliest, latest = await announce(f"announcement {k}")
        call.append((answered - start) * 1000)
        first.append((earliest - start) * 1000)
        last_.append((latest - start) * 1000)
        await asyncio.sleep(0.2)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if not all(order_ok) or any(len(r) != notifications + 1 for r in received):
        sys.exit("a stream missed, repeated or reordered a notification")
    p = lambda d, q: sorted(d)[min(len(d) - 1, int(q * len(d)))]
    print(f"RESULT fanout notifications={notifications} last_delivery_p50_ms={p(last_, 0.5):.0f} "
          f"last_delivery_p99_ms={p(last_, 0.99):.0f} last_delivery_max_ms={max(last_):.0f} "
          f"first_delivery_p50_ms={p(first, 0.5):.0f} call_p50_ms={p(call, 0.5):.1f} call_p99_ms={p(call, 0.99):.1f} "
          f"service_peak_rss_kib={status('VmHWM')}", flush=True)
    for c in channels + [base]:
        await c.close()

asyncio.run(fanout())
PY
grep -v "^$" "$WORK/service.log" | tail -5 >&2 || true
