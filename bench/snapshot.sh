#!/usr/bin/env bash
# The snapshot part of make bench (make bench-snapshot alone): an initial
# snapshot (--snapshot initial_only --create-slot) of a table of
# BENCH_SNAPSHOT_ROWS rows (1000000), against the ceiling of reading the same
# table with psql -c "COPY t TO STDOUT" > /dev/null; into the stdout sink
# (to /dev/null) and into the local kinesalite (aggregated); then the
# replication lag pg2kinesis reports while a steady BENCH_RATE rows/s
# (2000) of single-row inserts into another table runs during the snapshot
# into kinesalite. Writes bench/results/snapshot.md (BENCH_SNAPSHOT_OUT).
#
#   make bench-snapshot BENCH_SNAPSHOT_ROWS=1000000 BENCH_SNAPSHOT_RUNS=3
#
# make bench-snapshot-sweep (bench/snapshot.sh sweep) runs the same
# stdout-sink snapshot for each --snapshot-chunk-rows in
# BENCH_SNAPSHOT_CHUNKS and --snapshot-workers in BENCH_SNAPSHOT_WORKERS, of
# two tables of BENCH_SNAPSHOT_ROWS rows each, and writes
# bench/results/snapshot-sweep.md: the figures the defaults are chosen by.
#
# Every pg2kinesis run creates its own slot (snapbench_*, dropped after
# it) in a fresh database (bench_snap, bench_snap_sweep), and the snapshot
# state table is dropped between runs. Each figure is the median of
# BENCH_SNAPSHOT_RUNS runs (3), with the range of their times beside it.
# Processes are ended by their id only; the services are shared with
# others, and started (scripts/services.sh start) only if they do not
# answer.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-main}
ROWS=${BENCH_SNAPSHOT_ROWS:-1000000}
RUNS=${BENCH_SNAPSHOT_RUNS:-3}
RATE=${BENCH_RATE:-2000}
CHUNKS=${BENCH_SNAPSHOT_CHUNKS:-5000 10000 20000 50000 100000}
WORKERS=${BENCH_SNAPSHOT_WORKERS:-1 2 4}
PG_PORT=${PG2KINESIS_SERVICES_PG_PORT:-55432}
KINESIS=http://127.0.0.1:${PG2KINESIS_SERVICES_KINESIS_PORT:-4567}
PG_HOST=127.0.0.1
PG_BIN=/usr/lib/postgresql/15/bin
BIN=$ROOT/bin/pg2kinesis
TMP=${TMPDIR:-/tmp}/bench-snapshot
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
case $MODE in
main)
	DB=bench_snap
	OUT=${BENCH_SNAPSHOT_OUT:-$ROOT/bench/results/snapshot.md}
	;;
sweep)
	DB=bench_snap_sweep
	OUT=${BENCH_SNAPSHOT_OUT:-$ROOT/bench/results/snapshot-sweep.md}
	;;
*) echo "bench/snapshot.sh: $MODE: want main or sweep" >&2; exit 2 ;;
esac
for v in "$ROWS" "$RUNS" "$RATE" $CHUNKS $WORKERS; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench/snapshot.sh: $v: BENCH_SNAPSHOT_ROWS, _RUNS, _CHUNKS, _WORKERS and BENCH_RATE want whole numbers above 0" >&2; exit 2; }
done
if ! command -v /usr/bin/time >/dev/null || ! command -v bc >/dev/null; then
	apt-get install -y -qq time bc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time bc >/dev/null; }
fi
mkdir -p "$TMP" "$(dirname "$OUT")"
# What this script started, ended by id at exit (a run cut short).
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
if ! "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" || ! (exec 3<>"/dev/tcp/127.0.0.1/${KINESIS##*:}") 2>/dev/null; then
	"$ROOT/scripts/services.sh" start >/dev/null
fi
(cd "$ROOT" && go build -o "$BIN" ./cmd/pg2kinesis)

sql() { psql -X -q -v ON_ERROR_STOP=1 -At "host=$PG_HOST port=$PG_PORT user=postgres dbname=$1" -c "$2"; }
HZ=$(getconf CLK_TCK)
read -r LOAD_BEFORE _ </proc/loadavg
# The postmaster: its children are the backends.
POSTMASTER=$(ss -Htlnp "sport = :$PG_PORT" | sed -n 's/.*"postgres",pid=\([0-9]*\).*/\1/p' | head -1)

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# The rows: the shape of make bench's workloads.
ROW="g, g % 1000, repeat(md5(g::text), 3), now(), jsonb_build_object('k', g, 'v', 'x')"
prepare() { # TABLES...: a fresh database holding each table with ROWS rows
	drop_slots
	sql postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
	sql postgres "CREATE DATABASE $DB"
	local t
	for t in "$@"; do
		sql $DB "CREATE TABLE $t (id bigint PRIMARY KEY, n int, body text, ts timestamptz, j jsonb)"
		sql $DB "INSERT INTO $t SELECT $ROW FROM generate_series(1, $ROWS) g"
	done
	sql $DB "VACUUM ANALYZE" # hint bits set and the visibility map built before any reader
}

drop_slots() { # this script's slots, in its database (their pg2kinesis has exited)
	sql postgres "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'snapbench\_%' AND database LIKE 'bench\_snap%' AND NOT active" >/dev/null
}

copy_run() { # TABLES...: prints seconds psql_cpu_seconds server_backend_cpu_seconds
	# The psql command timed is exactly psql -c "COPY t TO STDOUT" (one -c
	# per table); its backend's CPU is read by a second, identical COPY
	# that first notes its backend's pid and reads /proc/PID/stat after.
	local t args=()
	for t in "$@"; do args+=(-c "COPY $t TO STDOUT"); done
	/usr/bin/time -f "%e %U %S" -o "$TMP/copy.time" psql -X -h "$PG_HOST" -p "$PG_PORT" -U postgres -d $DB "${args[@]}" >/dev/null
	{
		echo 'SELECT pg_backend_pid() AS bp \gset'
		echo '\setenv BENCH_BP :bp'
		for t in "$@"; do echo "COPY $t TO STDOUT;"; done
		echo "\\! awk '{print \$14 + \$15}' /proc/\$BENCH_BP/stat > $TMP/copy.backend"
	} >"$TMP/copy.sql"
	psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d $DB -f "$TMP/copy.sql" >/dev/null
	awk -v hz="$HZ" -v b="$(cat "$TMP/copy.backend")" '{printf "%s %.2f %.2f\n", $1, $2 + $3, b / hz}' "$TMP/copy.time"
}

copy_bytes() { # TABLES...: the bytes of their COPY output
	local t args=()
	for t in "$@"; do args+=(-c "COPY $t TO STDOUT"); done
	psql -X -h "$PG_HOST" -p "$PG_PORT" -U postgres -d $DB "${args[@]}" | wc -c
}

server_cpu() { # PID OUTFILE: the CPU seconds of the backends serving pg2kinesis PID
	# (its walsender, found by its client port, and its sessions in $DB),
	# sampled every 100 ms until PID exits; a backend's last 100 ms at most
	# are missed. Written to OUTFILE.
	local p=$1 out=$2 c line title port up start
	local -A cpu=() skip=()
	read -r up _ </proc/uptime
	start=$(((${up%.*} - 1) * HZ))
	while kill -0 "$p" 2>/dev/null; do
		for c in $(</proc/$POSTMASTER/task/$POSTMASTER/children); do
			[ -z "${skip[$c]-}" ] || continue
			{ read -r line </proc/$c/stat; } 2>/dev/null || continue
			# shellcheck disable=SC2206
			local f=(${line##*) })
			if [ -z "${cpu[$c]-}" ]; then
				[ "${f[19]}" -ge "$start" ] || { skip[$c]=1; continue; }
				title=$(tr '\0' ' ' 2>/dev/null </proc/$c/cmdline) || continue
				case $title in
				"postgres: postgres $DB "*) ;;
				"postgres: walsender "*)
					port=${title#*127.0.0.1(}
					port=${port%%)*}
					ss -Htnp "sport = :$port" | grep -q "pid=$p," || { skip[$c]=1; continue; }
					;;
				"postgres: "*) skip[$c]=1; continue ;;
				*) continue ;; # not yet named
				esac
			fi
			cpu[$c]=$((f[11] + f[12]))
		done
		sleep 0.1
	done
	local sum=0
	for c in "${!cpu[@]}"; do sum=$((sum + cpu[$c])); done
	echo "scale=2; $sum / $HZ" | bc >"$out"
}

metrics_port() { # LOG: the metrics port of the pg2kinesis that writes LOG, once it serves
	sed -n 's/.*msg="serving metrics and health checks" addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1"
}

metrics() { # PORT NAMES...: their values, one line, in order (a bash builtin connection: no process per poll)
	local port=$1
	shift
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	awk -v names="$*" 'BEGIN {n = split(names, want)} {v[$1] = $2} END {for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), (want[i] in v ? v[want[i]] : "NA"); print ""}' <&3
	exec 3<&-
}

RUN=0
p2k_run() { # SAMPLES args...: one initial_only snapshot with a new slot; prints seconds cpu_seconds rss_kb server_cpu_seconds
	# SAMPLES: a file to write the lag every 100 ms to ("" for none).
	local samples=$1 slot pid tpid port="" log
	shift
	# This runs in a subshell (read < <(...)): the main EXIT trap does not
	# see what it starts.
	trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
	RUN=$((RUN + 1))
	slot=snapbench_${BASHPID}_$RUN
	log=$TMP/$slot.log
	sql $DB "DROP TABLE IF EXISTS public.pg2kinesis_snapshot"
	/usr/bin/time -f "%e %U %S %M" -o "$TMP/p2k.time" env ${P2K_ENV:-} "$BIN" -h "$PG_HOST" -p "$PG_PORT" -u postgres -d $DB --pg-sslmode disable \
		-s "$slot" --create-slot --snapshot initial_only --metrics-addr 127.0.0.1:0 "$@" >/dev/null 2>"$log" &
	tpid=$!
	PIDS+=("$tpid")
	for _ in $(seq 100); do
		pid=$(cat /proc/$tpid/task/$tpid/children 2>/dev/null) || true
		[ -z "$pid" ] || break
		sleep 0.01
	done
	[ -n "$pid" ] || { echo "pg2kinesis did not start; see $log" >&2; exit 1; }
	PIDS+=("$pid")
	server_cpu "$pid" "$TMP/server.cpu" &
	local spid=$!
	if [ -n "$samples" ]; then
		: >"$samples"
		while kill -0 "$pid" 2>/dev/null; do
			[ -n "$port" ] || port=$(metrics_port "$log")
			[ -z "$port" ] || metrics "$port" pg2kinesis_replication_lag_seconds pg2kinesis_replication_lag_bytes >>"$samples" 2>/dev/null || true
			sleep 0.1
		done
	fi
	wait "$tpid" || { echo "pg2kinesis failed; see $log" >&2; exit 1; }
	wait "$spid"
	sql $DB "SELECT pg_drop_replication_slot('$slot')" >/dev/null
	grep -q 'msg="initial snapshot delivered' "$log" || { echo "pg2kinesis exited without delivering the snapshot; see $log" >&2; exit 1; }
	awk -v s="$(cat "$TMP/server.cpu")" '{printf "%s %.2f %s %s\n", $1, $2 + $3, $4, s}' "$TMP/p2k.time"
}

runs() { # KIND args...: RUNS runs of copy_run or p2k_run; prints the median run's figures, then the fastest and slowest seconds
	local kind=$1 i
	shift
	for i in $(seq "$RUNS"); do
		if [ "$kind" = copy ]; then copy_run "$@"; else p2k_run "" "$@"; fi
	done >"$TMP/runs"
	local mid
	mid=$(awk '{print $1}' "$TMP/runs" | median)
	awk -v m="$mid" '$1 == m {print; exit}' "$TMP/runs" | tr '\n' ' '
	awk '{print $1}' "$TMP/runs" | sort -n | sed -n '1p;$p' | tr '\n' ' '
	echo
}

pct() { echo "100 * $1 / $2" | bc -l; }

if [ "$MODE" = main ]; then
	echo "== snapshot: $ROWS rows" >&2
	prepare t
	bytes=$(copy_bytes t)
	read -r csec ccpu cserver cmin cmax < <(runs copy t)
	# A snapshot reads in key order (keyset chunks, an index scan), which
	# costs the server more than COPY's sequential scan: the same COPY in
	# key order is the ceiling of any key-ordered read.
	read -r osec ocpu oserver omin omax < <(runs copy "(SELECT * FROM t ORDER BY id)")
	read -r ssec scpu srss sserver smin smax < <(runs p2k --sink stdout)
	read -r wsec wcpu wrss wserver wmin wmax < <(runs p2k --sink stdout --snapshot-workers 1)
	read -r ksec kcpu krss kserver kmin kmax < <(runs p2k --kinesis-endpoint "$KINESIS" -k "bench_snap_$(date +%s%N)" --create-stream --shard-count 4 --shard-rate-limit=false)
	{
		echo "# pg2kinesis snapshot benchmark"
		echo
		echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, over loopback TCP; one table of $ROWS rows of bigint (the primary key), int, ~100 B text, timestamptz, jsonb, as make bench's workloads; $(printf %.1f "$(echo "$bytes / 1048576" | bc -l)") MB of COPY text. Made by bench/snapshot.sh (make bench-snapshot, and at the end of make bench)."
		echo
		echo "The ceiling is psql -c \"COPY t TO STDOUT\" > /dev/null; the same COPY of the table in key order (psql -c \"COPY (SELECT * FROM t ORDER BY id) TO STDOUT\", an index scan, as every key-ordered read is) is the ceiling of a read in key order, which a snapshot's keyset chunks are; pg2kinesis runs pg2kinesis --snapshot initial_only --create-slot (test_decoding, its defaults otherwise: CSVPayload records, --snapshot-chunk-rows 100000 and at most about 6 MiB of text a chunk shared by the readers, --snapshot-workers 2, both reading the one table, cut into spans by a sample of its keys, after its first chunk; one line with --snapshot-workers 1; into kinesalite, which has no shard limits, with --shard-rate-limit=false, as make bench's workloads), a new slot each run, until it exits 0 with every row acknowledged; its time includes its start, the slot's creation and the stream's start. MB/s is the COPY output's bytes over each reader's time (not pg2kinesis' record bytes), so it and rows/s give the same ratio to the ceiling. CPU is the reader's process alone (psql's, or pg2kinesis'); server CPU is its Postgres backends': for COPY the backend's own /proc figure, for pg2kinesis its walsender and its sessions in the database, sampled every 100 ms (a backend's last 100 ms are missed). Each line is the median of $RUNS runs; the range is of their times. The machine is shared (other work runs on the same 2 cores and the same Postgres), so runs vary by ±20 %."
		echo
		echo "| reader | rows/s | MB/s | vs COPY | s (range) | CPU s | CPU µs/row | server CPU s | peak RSS MB |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		printf '| psql COPY (ceiling) | %.0f | %.1f | 100 %% | %.2f (%.2f–%.2f) | %.2f | %.2f | %.2f | – |\n' \
			"$(echo "$ROWS / $csec" | bc -l)" "$(echo "$bytes / 1048576 / $csec" | bc -l)" "$csec" "$cmin" "$cmax" "$ccpu" \
			"$(echo "1000000 * $ccpu / $ROWS" | bc -l)" "$cserver"
		printf '| psql COPY (SELECT * FROM t ORDER BY id) (in key order) | %.0f | %.1f | %.0f %% | %.2f (%.2f–%.2f) | %.2f | %.2f | %.2f | – |\n' \
			"$(echo "$ROWS / $osec" | bc -l)" "$(echo "$bytes / 1048576 / $osec" | bc -l)" "$(pct "$csec" "$osec")" "$osec" "$omin" "$omax" "$ocpu" \
			"$(echo "1000000 * $ocpu / $ROWS" | bc -l)" "$oserver"
		for r in "pg2kinesis → stdout|$ssec|$scpu|$srss|$sserver|$smin|$smax" "pg2kinesis → stdout, --snapshot-workers 1|$wsec|$wcpu|$wrss|$wserver|$wmin|$wmax" \
			"pg2kinesis → kinesalite (aggregated)|$ksec|$kcpu|$krss|$kserver|$kmin|$kmax"; do
			IFS='|' read -r name sec cpu rss server min max <<<"$r"
			printf '| %s | %.0f | %.1f | %.0f %% | %.2f (%.2f–%.2f) | %.2f | %.2f | %.2f | %.0f |\n' "$name" \
				"$(echo "$ROWS / $sec" | bc -l)" "$(echo "$bytes / 1048576 / $sec" | bc -l)" "$(pct "$csec" "$sec")" "$sec" "$min" "$max" \
				"$cpu" "$(echo "1000000 * $cpu / $ROWS" | bc -l)" "$server" "$(echo "$rss / 1024" | bc -l)"
		done
	} >"$OUT"

	echo "== snapshot into kinesalite with $RATE rows/s of inserts" >&2
	sql $DB "CREATE TABLE w (id bigint PRIMARY KEY, n int, body text, ts timestamptz, j jsonb)"
	sql $DB "CREATE SEQUENCE s"
	echo "INSERT INTO w SELECT nextval('s'), 1, repeat(md5(random()::text), 3), now(), jsonb_build_object('k', 1, 'v', 'x');" >"$TMP/load.sql"
	"$PG_BIN/pgbench" -h "$PG_HOST" -p "$PG_PORT" -U postgres -n -c 4 -j 2 -R "$RATE" -T 600 -f "$TMP/load.sql" $DB >"$TMP/pgbench.log" 2>&1 &
	lpid=$!
	PIDS+=("$lpid")
	sleep 2 # steady before the snapshot starts
	read -r lsec lcpu lrss _ < <(p2k_run "$TMP/lag.samples" --kinesis-endpoint "$KINESIS" -k "bench_snap_$(date +%s%N)" --create-stream --shard-count 4 --shard-rate-limit=false --lag-interval 100ms)
	kill "$lpid" # SIGTERM: a background job ignores SIGINT
	wait "$lpid" || true
	written=$(sql $DB "SELECT count(*) FROM w")
	# The lag in seconds is 0 until the stream has read a transaction; the
	# lag in bytes is -1 until its first sample.
	read -r n lmax lp99 < <(awk '$1 != "NA" {print $1}' "$TMP/lag.samples" | sort -g | awk '{v[NR] = $1} END {printf "%d %.2f %.2f\n", NR, v[NR], v[int(NR * 0.99 + 0.5)]}')
	read -r bmax bp99 < <(awk '$2 != "NA" && $2 >= 0 {print $2}' "$TMP/lag.samples" | sort -g | awk '{v[NR] = $1} END {printf "%.0f %.0f\n", v[NR], v[int(NR * 0.99 + 0.5)]}')
	{
		echo
		echo "Replication lag during a snapshot: pgbench -R $RATE (-c 4 -j 2) inserts single rows into another table w from 2 s before pg2kinesis starts until it exits ($written rows in all, w is snapshotted too); pg2kinesis snapshots t ($ROWS rows) and streams w's inserts into kinesalite (aggregated, defaults, --shard-rate-limit=false, --lag-interval 100ms; with the limit, as against Kinesis, a snapshot takes what the stream's shards take, 1 MiB/s each, and the changes wait behind its records). The lags are pg2kinesis' own gauges, pg2kinesis_replication_lag_seconds (the age of the oldest transaction read and not yet acknowledged: a chunk's rows carry its high watermark's commit time) and pg2kinesis_replication_lag_bytes (the server's WAL position minus the slot's confirmed position: the whole server's WAL, so others' writes to this shared Postgres count too), read from /metrics every 100 ms (plus the time a read takes) while it runs."
		echo
		echo "| snapshot s | CPU µs/row | peak RSS MB | samples | lag s max | lag s p99 | lag MB max | lag MB p99 |"
		echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
		printf '| %.2f | %.2f | %.0f | %d | %.2f | %.2f | %.1f | %.1f |\n' "$lsec" "$(echo "1000000 * $lcpu / $ROWS" | bc -l)" "$(echo "$lrss / 1024" | bc -l)" \
			"$n" "$lmax" "$lp99" "$(echo "$bmax / 1048576" | bc -l)" "$(echo "$bp99 / 1048576" | bc -l)"
		echo
		verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo "not met"; fi; }
		echo "Targets (issue 17): ≥ 80 % of the COPY ceiling into stdout: $(printf %.0f "$(pct "$csec" "$ssec")") %, $(verdict "100 * $csec / $ssec >= 80") ($(printf %.0f "$(pct "$osec" "$ssec")") % of the COPY in key order; with one worker $(printf %.0f "$(pct "$csec" "$wsec")") %); peak RSS < 64 MiB: $(printf %.0f "$(echo "$srss / 1024" | bc -l)") MiB into stdout ($(printf %.0f "$(echo "$wrss / 1024" | bc -l)") with one worker), $(printf %.0f "$(echo "$krss / 1024" | bc -l)") into kinesalite, $(printf %.0f "$(echo "$lrss / 1024" | bc -l)") under load, $(verdict "$srss < 65536 && $wrss < 65536 && $krss < 65536 && $lrss < 65536"); lag < 2 s: $lmax s at most, $(verdict "$lmax < 2")."
	} >>"$OUT"
else
	echo "== snapshot sweep: two tables of $ROWS rows" >&2
	prepare t t2
	bytes=$(copy_bytes t t2)
	read -r csec ccpu cserver cmin cmax < <(runs copy t t2)
	{
		echo "# pg2kinesis snapshot: chunk size and workers"
		echo
		echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, over loopback TCP; two tables of $ROWS rows each (as bench/results/snapshot.md's), $(printf %.1f "$(echo "$bytes / 1048576" | bc -l)") MB of COPY text in all. Made by bench/snapshot.sh sweep (make bench-snapshot-sweep)."
		echo
		echo "pg2kinesis --snapshot initial_only --create-slot --sink stdout (to /dev/null), test_decoding, CSVPayload, with each --snapshot-chunk-rows and --snapshot-workers (with 4, two readers a table; a chunk also ends once its text reaches about 6 MiB shared between the readers, 3 MiB each for two, so the larger row counts are cut by bytes; and its memory limits: the sink's 16 MiB, the process' 40 MiB soft limit unless GOMEMLIMIT is set; the last line lifts the latter); the ceiling is psql -c \"COPY t TO STDOUT\" -c \"COPY t2 TO STDOUT\" > /dev/null, one table after the other. Each line is the median of $RUNS runs, the range is of their times; MB/s is the COPY bytes over the time; server CPU as in snapshot.md. The machine is shared: runs vary by ±20 %."
		echo
		echo "| workers | chunk rows | rows/s | MB/s | vs COPY | s (range) | CPU µs/row | server CPU s | peak RSS MB |"
		echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		printf '| psql COPY (ceiling) | | %.0f | %.1f | 100 %% | %.2f (%.2f–%.2f) | %.2f | %.2f | – |\n' \
			"$(echo "2 * $ROWS / $csec" | bc -l)" "$(echo "$bytes / 1048576 / $csec" | bc -l)" "$csec" "$cmin" "$cmax" \
			"$(echo "1000000 * $ccpu / (2 * $ROWS)" | bc -l)" "$cserver"
	} >"$OUT"
	for w in $WORKERS; do
		for c in $CHUNKS; do
			echo "== workers $w, chunk rows $c" >&2
			read -r sec cpu rss server min max < <(runs p2k --sink stdout --snapshot-chunk-rows "$c" --snapshot-workers "$w")
			printf '| %d | %s | %.0f | %.1f | %.0f %% | %.2f (%.2f–%.2f) | %.2f | %.2f | %.0f |\n' "$w" "$c" \
				"$(echo "2 * $ROWS / $sec" | bc -l)" "$(echo "$bytes / 1048576 / $sec" | bc -l)" "$(pct "$csec" "$sec")" "$sec" "$min" "$max" \
				"$(echo "1000000 * $cpu / (2 * $ROWS)" | bc -l)" "$server" "$(echo "$rss / 1024" | bc -l)" >>"$OUT"
		done
	done
	# The largest chunk again without the 40 MiB soft memory limit: how
	# much of its time is the collector's.
	c=$(echo $CHUNKS | tr ' ' '\n' | sort -n | tail -1)
	echo "== workers 1, chunk rows $c, GOMEMLIMIT=1GiB" >&2
	read -r sec cpu rss server min max < <(P2K_ENV=GOMEMLIMIT=1GiB runs p2k --sink stdout --snapshot-chunk-rows "$c" --snapshot-workers 1)
	printf '| 1 | %s with GOMEMLIMIT=1GiB | %.0f | %.1f | %.0f %% | %.2f (%.2f–%.2f) | %.2f | %.2f | %.0f |\n' "$c" \
		"$(echo "2 * $ROWS / $sec" | bc -l)" "$(echo "$bytes / 1048576 / $sec" | bc -l)" "$(pct "$csec" "$sec")" "$sec" "$min" "$max" \
		"$(echo "1000000 * $cpu / (2 * $ROWS)" | bc -l)" "$server" "$(echo "$rss / 1024" | bc -l)" >>"$OUT"
fi
read -r load_after _ </proc/loadavg
{
	echo
	echo "Load average (1 min) of the machine, others' work included: $LOAD_BEFORE before, $load_after after ($(nproc) cores)."
} >>"$OUT"
drop_slots
sql postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
cat "$OUT"
