#!/usr/bin/env bash
# Local services for pg2kinesis' tests and demo, on loopback only:
#   PostgreSQL 15 (wal_level=logical, wal2json) on 127.0.0.1:$PG_PORT
#   kinesalite (Kinesis protocol, in memory)     on 127.0.0.1:$KINESIS_PORT
#
# Usage: scripts/services.sh install|start|stop|status|env
# start installs what is missing, is idempotent and waits until both answer.
# As root, Postgres runs as the "postgres" user (it refuses to run as root).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_PORT=${PG2KINESIS_SERVICES_PG_PORT:-55432}
KINESIS_PORT=${PG2KINESIS_SERVICES_KINESIS_PORT:-4567}
PG_BIN=${PG2KINESIS_SERVICES_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_LIB=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The state directory must be reachable by the postgres user when we run as
# root; a clone under a private home directory is not, so fall back to /tmp.
state_dir() {
	local dir=${PG2KINESIS_SERVICES_DIR:-$ROOT/.services}
	if [ "$(id -u)" = 0 ] && [ -z "${PG2KINESIS_SERVICES_DIR:-}" ]; then
		mkdir -p "$dir"
		if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
			dir=/tmp/pg2kinesis-services-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
		fi
	fi
	mkdir -p "$dir"
	printf '%s' "$dir"
}

STATE=$(state_dir)
PGDATA=$STATE/pg
PGSOCK=$STATE/pgsock
KPID=$STATE/kinesalite.pid
KLOG=$STATE/kinesalite.log

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

install() {
	local pkgs=()
	[ -x "$PG_BIN/postgres" ] || pkgs+=(postgresql-15)
	[ -f "$PG_LIB/wal2json.so" ] || pkgs+=(postgresql-15-wal2json)
	if [ ${#pkgs[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || die "missing ${pkgs[*]}; run: sudo apt-get install -y ${pkgs[*]}"
		log "installing ${pkgs[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
	fi
	if [ ! -f "$ROOT/node_modules/kinesalite/package.json" ] ||
		[ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
		log "installing kinesalite (npm ci)"
		(cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
	fi
}

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

start_pg() {
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		log "creating Postgres cluster in $PGDATA"
		mkdir -p "$PGDATA" "$PGSOCK"
		if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDATA" "$PGSOCK"; fi
		chmod 700 "$PGDATA"
		as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
		cat >>"$PGDATA/postgresql.conf" <<-EOF
			# pg2kinesis local services
			listen_addresses = '127.0.0.1'
			port = $PG_PORT
			unix_socket_directories = '$PGSOCK'
			wal_level = logical
			max_replication_slots = 64
			max_wal_senders = 64
			max_connections = 200
			wal_sender_timeout = 60s
			fsync = off
			synchronous_commit = off
			full_page_writes = off
			shared_buffers = 128MB
			logging_collector = off
		EOF
		cat >"$PGDATA/pg_hba.conf" <<-EOF
			local all         all                 trust
			local replication all                 trust
			host  all         all   127.0.0.1/32  trust
			host  replication all   127.0.0.1/32  trust
		EOF
	fi
	mkdir -p "$PGSOCK"
	touch "$STATE/postgres.log"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$PGSOCK" "$STATE/postgres.log"; fi
	if ! pg_running; then
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" &&
			die "port $PG_PORT is taken by another Postgres; stop it or set PG2KINESIS_SERVICES_PG_PORT"
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$STATE/postgres.log" -w -t 60 start >/dev/null ||
			die "Postgres did not start; see $STATE/postgres.log"
	fi
	for _ in $(seq 1 120); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0
		sleep 0.5
	done
	die "Postgres does not accept connections on 127.0.0.1:$PG_PORT; see $STATE/postgres.log"
}

kinesalite_running() { [ -f "$KPID" ] && kill -0 "$(cat "$KPID")" 2>/dev/null; }
kinesalite_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$KINESIS_PORT") 2>/dev/null; }

start_kinesalite() {
	if ! kinesalite_running; then
		kinesalite_answers &&
			die "port $KINESIS_PORT is taken by another process; stop it or set PG2KINESIS_SERVICES_KINESIS_PORT"
		nohup node "$ROOT/scripts/kinesalite.js" "$KINESIS_PORT" >"$KLOG" 2>&1 </dev/null &
		echo $! >"$KPID"
	fi
	for _ in $(seq 1 120); do
		kinesalite_answers && return 0
		kinesalite_running || die "kinesalite exited; see $KLOG"
		sleep 0.5
	done
	die "kinesalite does not answer on 127.0.0.1:$KINESIS_PORT; see $KLOG"
}

stop_all() {
	if [ -f "$PGDATA/PG_VERSION" ] && pg_running; then
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
		log "Postgres stopped"
	fi
	if kinesalite_running; then
		local pid
		pid=$(cat "$KPID")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		log "kinesalite stopped"
	fi
	rm -f "$KPID"
}

print_env() {
	echo "PG2KINESIS_TEST_PG_DSN='host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable'"
	echo "PG2KINESIS_TEST_KINESIS_ENDPOINT='http://127.0.0.1:$KINESIS_PORT'"
}

status() {
	local rc=0
	if [ -f "$PGDATA/PG_VERSION" ] && pg_running; then
		echo "postgres:   running on 127.0.0.1:$PG_PORT (data $PGDATA)"
	else
		echo "postgres:   stopped"; rc=1
	fi
	if kinesalite_running && kinesalite_answers; then
		echo "kinesalite: running on http://127.0.0.1:$KINESIS_PORT"
	else
		echo "kinesalite: stopped"; rc=1
	fi
	return $rc
}

case "${1:-}" in
install) install ;;
start)
	install
	start_pg
	start_kinesalite
	status
	print_env
	;;
stop) stop_all ;;
status) status ;;
env) print_env ;;
*) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
