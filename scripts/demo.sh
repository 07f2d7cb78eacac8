#!/usr/bin/env bash
# make demo: run pg2kinesis against the local services: Postgres changes go
# to a kinesalite stream, and `pg2kinesis tail` reads them back. When
# neither service was running, the demo stops both at the end; when one
# was (for the tests, say), it leaves both running.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_PORT=${PG2KINESIS_SERVICES_PG_PORT:-55432}
KINESIS=http://127.0.0.1:${PG2KINESIS_SERVICES_KINESIS_PORT:-4567}
DB=pg2kinesis_demo
STREAM=pg2kinesis_demo_$$
BIN=$ROOT/bin/pg2kinesis
# kinesalite checks no credentials, but the AWS SDK wants some.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

sql() { # sql DB [psql args...]
	local db=$1
	shift
	psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$db" "$@"
}

services_started=
if ! status=$("$ROOT/scripts/services.sh" status 2>/dev/null); then
	grep -q running <<<"$status" || services_started=1
	"$ROOT/scripts/services.sh" start >&2
fi
stop_services() { [ -z "$services_started" ] || "$ROOT/scripts/services.sh" stop >&2; }
trap stop_services EXIT

sql postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pg2kinesis_demo' AND NOT active" >/dev/null
sql postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>/dev/null
sql "$DB" -c "CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(12,2))"

echo "== pg2kinesis: wal2json slot → Kinesis stream $STREAM (2 shards, KPL aggregation)" >&2
"$BIN" -h 127.0.0.1 -p "$PG_PORT" -u postgres -d "$DB" --pg-sslmode disable \
	-s pg2kinesis_demo --create-slot --pg-slot-output-plugin wal2json \
	--kinesis-endpoint "$KINESIS" -k "$STREAM" --create-stream --shard-count 2 \
	--metrics-addr 127.0.0.1:${PG2KINESIS_DEMO_METRICS_PORT:-9187} &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; stop_services' EXIT

for i in $(seq 1 100); do
	active=$(sql postgres -Atc "SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'pg2kinesis_demo'")
	[ "$active" = t ] && break
	kill -0 "$pid" 2>/dev/null || { echo "demo: pg2kinesis exited (its log is above)" >&2; exit 1; }
	[ "$i" -lt 100 ] || { echo "demo: pg2kinesis does not stream from slot pg2kinesis_demo after 20s (its log is above)" >&2; exit 1; }
	sleep 0.2
done

echo "== a few transactions" >&2
sql "$DB" <<'SQL'
INSERT INTO orders VALUES (1, 'Ada', 12.50), (2, 'Grace, "Amazing"', 99.00), (3, 'Zoë', 7);
UPDATE orders SET total = 15.00 WHERE id = 1;
DELETE FROM orders WHERE id = 2;
SQL

echo "== pg2kinesis tail: <partition key> TAB <record>" >&2
"$BIN" tail --kinesis-endpoint "$KINESIS" -k "$STREAM" --count 5 --timeout 20s

echo "== metrics (http://127.0.0.1:${PG2KINESIS_DEMO_METRICS_PORT:-9187}/metrics), readiness (/readyz)" >&2
curl -s "http://127.0.0.1:${PG2KINESIS_DEMO_METRICS_PORT:-9187}/metrics" |
	grep -E '^pg2kinesis_(changes_published_total|records_acknowledged_total|replication_lag_seconds|kinesis_records_total)[ {]' || true
curl -s "http://127.0.0.1:${PG2KINESIS_DEMO_METRICS_PORT:-9187}/readyz" || true

echo "== SIGTERM: pg2kinesis drains, reports its position to Postgres and exits 0" >&2
kill -TERM "$pid"
wait "$pid"
trap stop_services EXIT
# The walsender releases the slot a moment after pg2kinesis has gone.
for try in 1 2 3 4 5 6 7 8 9 10; do
	if [ "$try" = 10 ]; then
		sql postgres -c "SELECT pg_drop_replication_slot('pg2kinesis_demo')" >/dev/null
	elif sql postgres -c "SELECT pg_drop_replication_slot('pg2kinesis_demo')" >/dev/null 2>&1; then
		break
	fi
	sleep 0.3
done
sql postgres -c "DROP DATABASE $DB WITH (FORCE)"
echo "== demo done" >&2
