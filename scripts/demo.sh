#!/usr/bin/env bash
# make demo: run pg2kinesis against the local services on a small workload
# and show what it streams. Until the Kinesis sink lands, records go to
# standard output, as the output plugin writes them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_PORT=${PG2KINESIS_SERVICES_PG_PORT:-55432}
DB=pg2kinesis_demo
sql() { # sql DB [psql args...]
	local db=$1
	shift
	psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$db" "$@"
}

sql postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pg2kinesis_demo' AND NOT active" >/dev/null
sql postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
sql "$DB" -c "CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(12,2))"

echo "== pg2kinesis --sink stdout --create-slot (wal2json)" >&2
"$ROOT/bin/pg2kinesis" -h 127.0.0.1 -p "$PG_PORT" -u postgres -d "$DB" --pg-sslmode disable \
	-s pg2kinesis_demo --create-slot --pg-slot-output-plugin wal2json --sink stdout &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
	active=$(sql postgres -Atc "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2kinesis_demo'")
	[ "$active" = t ] && break
	sleep 0.2
done

echo "== a few transactions" >&2
sql "$DB" <<'SQL'
INSERT INTO orders VALUES (1, 'Ada', 12.50), (2, 'Grace, "Amazing"', 99.00);
UPDATE orders SET total = 15.00 WHERE id = 1;
DELETE FROM orders WHERE id = 2;
SQL
sleep 1

echo "== SIGTERM: pg2kinesis flushes its position and exits" >&2
kill -TERM "$pid"
wait "$pid"
trap - EXIT
sql postgres -c "SELECT pg_drop_replication_slot('pg2kinesis_demo')" >/dev/null
sql postgres -c "DROP DATABASE $DB WITH (FORCE)"
echo "== demo done" >&2
