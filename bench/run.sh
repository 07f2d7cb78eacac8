#!/usr/bin/env bash
# make bench: drain the same slot contents with pg_recvlogical (the ceiling)
# and with pg2kinesis (stdout sink to /dev/null, and Kinesis into a local
# kinesalite, aggregated), for each plugin and three workload shapes, and
# report rows/s, MB/s, the ratio to the ceiling, CPU seconds and per row,
# and peak RSS, of each reader's median run of BENCH_RUNS (3).
#
#   make bench BENCH_ROWS=1000000 BENCH_SINGLE_ROWS=100000
#
# A part of it, elsewhere than latest.md (BENCH_LATENCY_SECONDS=0 skips
# the latency runs):
#
#   make bench BENCH_PLUGINS=test_decoding BENCH_SHAPES=single \
#     BENCH_LATENCY_SECONDS=0 BENCH_OUT=/tmp/bench.md
#
# BENCH_TRANSPORT=unix connects every reader through Postgres' Unix socket
# instead of loopback TCP (tcp, the default). The Kinesis runs send to a
# kinesalite of the bench's own, on PG2KINESIS_BENCH_KINESIS_PORT (4569),
# the outage to another, on PG2KINESIS_BENCH_OUTAGE_PORT (4568).
#
# Shapes: 1000-row transactions, single-row transactions, and one
# transaction of BENCH_ROWS rows (its peak RSS shows memory stays flat;
# pg_recvlogical and the stdout sink only). Then, per plugin, the latency
# from commit to Kinesis acknowledgement of single-row transactions at a
# steady BENCH_RATE rows/s for BENCH_LATENCY_SECONDS (pgbench), from
# pg2kinesis' debug log ("transaction delivered", latency_ms). Last, the
# peak RSS through a Kinesis outage: a private kinesalite stopped (SIGSTOP)
# for BENCH_OUTAGE_SECONDS (10; 0 skips it) while a backlog of BENCH_ROWS
# rows waits, then resumed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${BENCH_ROWS:-1000000}
SINGLE_ROWS=${BENCH_SINGLE_ROWS:-100000}
RATE=${BENCH_RATE:-2000}
LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-30}
OUTAGE_SECONDS=${BENCH_OUTAGE_SECONDS:-10}
PLUGINS=${BENCH_PLUGINS:-test_decoding wal2json pgoutput}
# Each reader drains its own copy of a workload this many times (a slot
# each, interleaved with the other readers' runs); the table gives the
# median run. One run on a shared machine can be off by 20 %.
RUNS=${BENCH_RUNS:-3}
SHAPES=${BENCH_SHAPES:-batch single huge}
PG_PORT=${PG2KINESIS_SERVICES_PG_PORT:-55432}
# The bench's own kinesalite (see start_kinesalite), beside the
# services' one.
KINESIS_PORT=${PG2KINESIS_BENCH_KINESIS_PORT:-4569}
KINESIS=http://127.0.0.1:$KINESIS_PORT
OUTAGE_PORT=${PG2KINESIS_BENCH_OUTAGE_PORT:-4568} # the outage's kinesalite
# How the readers reach Postgres: tcp (loopback) or unix (its socket).
TRANSPORT=${BENCH_TRANSPORT:-tcp}
case $TRANSPORT in
tcp) PG_HOST=127.0.0.1 ;;
unix) PG_HOST=${PG2KINESIS_SERVICES_DIR:-$ROOT/.services}/pgsock ;;
*) echo "bench: BENCH_TRANSPORT=$TRANSPORT: want tcp or unix" >&2; exit 2 ;;
esac
PG_BIN=/usr/lib/postgresql/15/bin
BIN=$ROOT/bin/pg2kinesis
WAIT=$ROOT/bin/benchwait
DB=pg2kinesis_bench
OUT=${BENCH_OUT:-$ROOT/bench/results/latest.md}
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

if ! [[ $ROWS =~ ^[1-9][0-9]*000$ ]]; then
	echo "bench: BENCH_ROWS=$ROWS: want a positive multiple of 1000 (the rows come in 1000-row transactions)" >&2
	exit 2
fi
if ! [[ $RUNS =~ ^[1-9]$|^1[0-9]$|^2[01]$ ]] || ((RUNS % 2 == 0)); then
	# Three slots a run, in max_replication_slots (64) with the latency's.
	echo "bench: BENCH_RUNS=$RUNS: want an odd number from 1 to 21 (the median is then one run)" >&2
	exit 2
fi
if ! [[ $SINGLE_ROWS =~ ^[1-9][0-9]*$ && $RATE =~ ^[1-9][0-9]*$ && $LATENCY_SECONDS =~ ^[0-9]+$ && $OUTAGE_SECONDS =~ ^[0-9]+$ ]]; then
	echo "bench: BENCH_SINGLE_ROWS, BENCH_RATE, BENCH_LATENCY_SECONDS and BENCH_OUTAGE_SECONDS want whole numbers (above 0 but the last two)" >&2
	exit 2
fi
if ! [[ $KINESIS_PORT =~ ^[1-9][0-9]*$ && $OUTAGE_PORT =~ ^[1-9][0-9]*$ ]] || [ "$KINESIS_PORT" = "$OUTAGE_PORT" ]; then
	echo "bench: PG2KINESIS_BENCH_KINESIS_PORT=$KINESIS_PORT, PG2KINESIS_BENCH_OUTAGE_PORT=$OUTAGE_PORT: want two different port numbers" >&2
	exit 2
fi
only() { # VARIABLE "ALLOWED..." VALUES...: exits 2 naming a value not allowed
	local var=$1 allowed=$2 v
	shift 2
	for v in "$@"; do
		[[ " $allowed " == *" $v "* ]] || { echo "bench: $var: unknown value $v (want one of: $allowed)" >&2; exit 2; }
	done
}
# shellcheck disable=SC2086
only BENCH_PLUGINS "test_decoding wal2json pgoutput" $PLUGINS
# shellcheck disable=SC2086
only BENCH_SHAPES "batch single huge" $SHAPES
if ! command -v /usr/bin/time >/dev/null || ! command -v bc >/dev/null || ! command -v curl >/dev/null; then
	apt-get install -y -qq time bc curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time bc curl >/dev/null; }
fi
# A reader left running (Ctrl-C, a failure) would hold its slot.
KINESALITE_PID=
trap 'kill $(jobs -p) $KINESALITE_PID 2>/dev/null || true' EXIT
"$ROOT/scripts/services.sh" start >/dev/null

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
start_kinesalite
(cd "$ROOT" && go build -o "$BIN" ./cmd/pg2kinesis && go build -o "$WAIT" ./tools/benchwait)
# Into the page cache, so that no reader's first run pays for loading it.
"$BIN" --version >/dev/null
"$WAIT" -h 2>/dev/null || true
"$PG_BIN/pg_recvlogical" --version >/dev/null


# Each reader prints: seconds cpu_seconds rss_kb
run_recv() { # PLUGIN ENDLSN SLOT
	# shellcheck disable=SC2046
	/usr/bin/time -f "%e %U %S %M" -o /tmp/bench-recv.time "$PG_BIN/pg_recvlogical" -h "$PG_HOST" -p "$PG_PORT" -U postgres -d $DB \
		-S "$3" --start --endpos "$2" $(recv_options "$1") -f /dev/null
	awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' /tmp/bench-recv.time
}

run_p2k() { # PLUGIN ENDLSN SLOT args...
	local plugin=$1 end=$2 slot=$3
	shift 3
	local start pid stat hz
	start=$(date +%s.%N)
	# The log names the metrics port: the last run's must be gone before
	# wait_flushed looks (the redirect below truncates it in the child).
	rm -f "/tmp/bench-$slot.log"
	"$BIN" -h "$PG_HOST" -p "$PG_PORT" -u postgres -d $DB --pg-sslmode disable -s "$slot" \
		--pg-slot-output-plugin "$plugin" --metrics-addr 127.0.0.1:0 "$@" >/dev/null 2>/tmp/bench-$slot.log &
	pid=$!
	wait_flushed $pid "/tmp/bench-$slot.log" "$end"
	local secs
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	stat=$(awk '{print $14 + $15}' /proc/$pid/stat)
	hz=$(getconf CLK_TCK)
	local rss bytes
	rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	bytes=$(metric "$(metrics_port /tmp/bench-$slot.log)" pg2kinesis_wal_bytes_total)
	kill -TERM $pid
	wait $pid
	echo "$secs $(echo "scale=2; $stat / $hz" | bc) $rss $bytes"
}

mkdir -p "$(dirname "$OUT")"
{
	echo "# pg2kinesis benchmark"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, readers connected over $TRANSPORT; rows of bigint, int, ~100 B text, timestamptz, jsonb; every reader drains the same slot contents (a slot per run, created before the workload), $RUNS times, its runs interleaved with the other readers' (each round led by another reader); each row is a reader's median run, and \"runs vs ceiling\" the slowest and the fastest of its runs against the median ceiling."
	echo
	echo "MB/s is the plugin's output (what pg2kinesis counts as bytes in, pg2kinesis_wal_bytes_total), the same for every reader of one slot's contents; CPU is the reader's process alone. pg2kinesis runs with its defaults (CSVPayload records, aggregation), into a 4-shard stream of kinesalite, created before the run (as the slots are), which has no shard limits, with --shard-rate-limit=false; kinesalite stands in for Kinesis, which does not run on the database's cores: it runs $KINESALITE_PRIORITY, to take the CPU the walsender leaves; a run ends when its flush position, polled on /metrics every 50 ms by one process (tools/benchwait, which keeps its connection: a process per poll took a few % of the walsender's core), passes the end of the workload. pg_recvlogical runs with its defaults too. Over loopback TCP, pg2kinesis' larger socket receive buffer and its read batching (SO_RCVLOWAT, see docs/architecture.md) can make it the faster (above 100 %); over the Unix socket, which Linux does not let a reader batch, it wakes once per message and pg_recvlogical is usually the faster. Runs vary by ±20 % on a shared 2-core machine."
	echo
	echo "| plugin | workload | reader | rows/s | MB/s | vs ceiling | runs vs ceiling | CPU s | CPU µs/row | peak RSS MB |"
	echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
} >"$OUT"

for plugin in $PLUGINS; do
	for shape in $SHAPES; do
		rows=$ROWS
		label="$ROWS rows, 1000 per transaction"
		if [ "$shape" = single ]; then
			rows=$SINGLE_ROWS
			label="$SINGLE_ROWS single-row transactions"
		elif [ "$shape" = huge ]; then
			label="one transaction of $ROWS rows"
		fi
		echo "== $plugin, $label" >&2
		end=$(prepare "$plugin" "$shape")
		# $(...) does not stop on a failure inside: check what it gave.
		[[ $end =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || { echo "bench: preparing $plugin, $label failed" >&2; exit 1; }
		recv=() stdout=() kin=()
		order=(recv stdout kinesis)
		[ "$shape" != huge ] || order=(recv stdout)
		for i in $(seq "$RUNS"); do
			# Each round starts with another reader: the first to read
			# a fresh workload can be the slower.
			for j in $(seq 0 $((${#order[@]} - 1))); do
				case ${order[$(((i + j) % ${#order[@]}))]} in
				recv)
					read -r sec cpu rss < <(run_recv "$plugin" "$end" "bench_recv$i")
					recv+=("$sec $cpu $rss")
					;;
				stdout)
					read -r ssec scpu srss bytes < <(run_p2k "$plugin" "$end" "bench_stdout$i" --sink stdout)
					stdout+=("$ssec $scpu $srss")
					;;
				kinesis)
					# kinesalite has no shard limits: Kinesis' 1 MiB/s per shard
					# would cap 4 shards at 4 MiB/s, far below these backlogs.
					stream=bench_$(date +%s%N)
					kinesis_call CreateStream "{\"StreamName\":\"$stream\",\"ShardCount\":4}"
					read -r sec cpu rss _ < <(run_p2k "$plugin" "$end" "bench_kinesis$i" --kinesis-endpoint "$KINESIS" \
						-k "$stream" --shard-rate-limit=false)
					kin+=("$sec $cpu $rss")
					# kinesalite keeps records in memory: a bigger node
					# process would slow the runs after.
					kinesis_call DeleteStream "{\"StreamName\":\"$stream\"}"
					;;
				esac
			done
		done
		read -r rsec _ < <(median "${recv[@]}")
		readers=("pg_recvlogical (ceiling)|$(median "${recv[@]}")|$(spread "${recv[@]}")"
			"pg2kinesis → stdout|$(median "${stdout[@]}")|$(spread "${stdout[@]}")")
		if [ "$shape" != huge ]; then
			readers+=("pg2kinesis → kinesalite (aggregated)|$(median "${kin[@]}")|$(spread "${kin[@]}")")
		fi
		for r in "${readers[@]}"; do
			IFS='|' read -r name run slowest fastest <<<"$r"
			read -r sec cpu rss <<<"$run"
			printf '| %s | %s | %s | %.0f | %.1f | %.0f %% | %.0f–%.0f %% | %.1f | %.1f | %.0f |\n' "$plugin" "$label" "$name" \
				"$(echo "$rows / $sec" | bc -l)" "$(echo "$bytes / 1048576 / $sec" | bc -l)" "$(echo "100 * $rsec / $sec" | bc -l)" \
				"$(echo "100 * $rsec / $slowest" | bc -l)" "$(echo "100 * $rsec / $fastest" | bc -l)" \
				"$cpu" "$(echo "1000000 * $cpu / $rows" | bc -l)" "$(echo "$rss / 1024" | bc -l)" >>"$OUT"
		done
	done
done
latency() { # PLUGIN: p50 and p99 ms from commit to acknowledgement at a steady rate
	local plugin=$1 log=/tmp/bench-bench_lat.log pid end
	prepare "$plugin" none >/dev/null
	sql $DB "CREATE SEQUENCE s"
	sql $DB "SELECT pg_create_logical_replication_slot('bench_lat', '$plugin')" >/dev/null
	rm -f "$log" # as in run_p2k
	"$BIN" -h "$PG_HOST" -p "$PG_PORT" -u postgres -d $DB --pg-sslmode disable -s bench_lat \
		--pg-slot-output-plugin "$plugin" --log-level debug --metrics-addr 127.0.0.1:0 \
		--kinesis-endpoint "$KINESIS" -k "bench_$(date +%s%N)" --create-stream --shard-count 4 >/dev/null 2>"$log" &
	pid=$!
	local deadline=$((SECONDS + 120))
	until [ "$(sql postgres "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench_lat'")" = t ]; do
		kill -0 $pid 2>/dev/null || { echo "pg2kinesis exited; see $log" >&2; exit 1; }
		[ $SECONDS -lt $deadline ] || { echo "pg2kinesis does not stream after 2 minutes; see $log" >&2; kill $pid; exit 1; }
		sleep 0.1
	done
	echo "INSERT INTO t SELECT nextval('s'), 1, repeat(md5(random()::text), 3), now(), jsonb_build_object('k', 1, 'v', 'x');" >/tmp/bench-latency.sql
	# Committed as Postgres does by default (synchronous_commit on): the
	# services turn it off for speed, and then the WAL a walsender may
	# send waits for the WAL writer (wal_writer_delay, 200 ms), a floor
	# under every latency that is not pg2kinesis'.
	PGOPTIONS='-c synchronous_commit=on' "$PG_BIN/pgbench" -h "$PG_HOST" -p "$PG_PORT" -U postgres -n -c 4 -j 2 -R "$RATE" -T "$LATENCY_SECONDS" -f /tmp/bench-latency.sql $DB >/dev/null 2>&1
	end=$(sql $DB "SELECT pg_current_wal_insert_lsn()")
	wait_flushed $pid "$log" "$end"
	kill -TERM $pid
	wait $pid
	sed -n 's/.*msg="transaction delivered".*latency_ms=\([0-9.]*\).*/\1/p' "$log" | sort -n |
		awk '{v[NR] = $1} END {printf "%d %.0f %.0f\n", NR, v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)]}'
}

[ "$LATENCY_SECONDS" -gt 0 ] && {
	echo
	echo "Commit to Kinesis acknowledgement, single-row transactions at a steady $RATE rows/s for $LATENCY_SECONDS s (pgbench -R, synchronous_commit on as by default), into the same kinesalite, aggregated, with the default Kinesis flags (--flush-interval 250ms, --shard-rate-limit on), from pg2kinesis' debug log:"
	echo
	echo "| plugin | transactions | p50 ms | p99 ms |"
	echo "|---|---:|---:|---:|"
} >>"$OUT"
[ "$LATENCY_SECONDS" -gt 0 ] && for plugin in $PLUGINS; do
	echo "== $plugin, latency at $RATE rows/s" >&2
	read -r n p50 p99 < <(latency "$plugin")
	echo "| $plugin | $n | $p50 | $p99 |" >>"$OUT"
done

outage() { # peak RSS before and through a Kinesis outage, and the drain after it
	local log=/tmp/bench-bench_kinesis1.log kport=$OUTAGE_PORT kpid pid end start port="" hwm drained
	local deadline=$((SECONDS + 120))
	end=$(prepare test_decoding batch)
	[[ $end =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || { echo "bench: preparing the outage's workload failed" >&2; exit 1; }
	port_free "$kport" PG2KINESIS_BENCH_OUTAGE_PORT
	node "$ROOT/scripts/kinesalite.js" "$kport" >/tmp/bench-outage-kinesalite.log 2>&1 &
	kpid=$!
	# This runs in a subshell (read < <(outage)): the main EXIT trap does
	# not see its processes, and a stopped kinesalite would hold the port.
	trap "kill -CONT $kpid 2>/dev/null; kill $kpid 2>/dev/null || true" EXIT
	await_listening "$kpid" "$kport" /tmp/bench-outage-kinesalite.log
	"$BIN" -h "$PG_HOST" -p "$PG_PORT" -u postgres -d $DB --pg-sslmode disable -s bench_kinesis1 \
		--pg-slot-output-plugin test_decoding --metrics-addr 127.0.0.1:0 \
		--kinesis-endpoint "http://127.0.0.1:$kport" -k bench_outage --create-stream --shard-count 4 --shard-rate-limit=false >/dev/null 2>"$log" &
	pid=$!
	trap "kill -CONT $kpid 2>/dev/null; kill $kpid $pid 2>/dev/null || true" EXIT
	until [ -n "$port" ] && [ "$(metric "$port" pg2kinesis_records_in_flight)" -gt 0 ] 2>/dev/null; do
		kill -0 $pid 2>/dev/null || { echo "pg2kinesis exited; see $log" >&2; exit 1; }
		[ $SECONDS -lt $deadline ] || { echo "pg2kinesis has sent nothing after 2 minutes; see $log" >&2; kill $pid; exit 1; }
		port=$(metrics_port "$log")
		sleep 0.05
	done
	kill -STOP $kpid
	sleep "$OUTAGE_SECONDS"
	hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	kill -CONT $kpid
	start=$(date +%s.%N)
	wait_flushed $pid "$log" "$end"
	drained=$(echo "$(date +%s.%N) - $start" | bc)
	echo "$hwm $(awk '/VmHWM/ {print $2}' /proc/$pid/status) $drained"
	kill -TERM $pid $kpid
	wait $pid $kpid || true
}

[ "$OUTAGE_SECONDS" -gt 0 ] && {
	echo "== test_decoding, a Kinesis outage of $OUTAGE_SECONDS s" >&2
	read -r during peak drained < <(outage)
	{
		echo
		echo "Memory through a Kinesis outage: $ROWS rows in 1000-row transactions (test_decoding) wait while a private kinesalite is stopped (SIGSTOP) for $OUTAGE_SECONDS s, then resumed; pg2kinesis with its defaults (the sink holds at most 16 MiB of records; the soft memory limit is 40 MiB unless GOMEMLIMIT is set):"
		echo
		echo "| peak RSS MB during the outage | peak RSS MB in all | drained after resuming, s |"
		echo "|---:|---:|---:|"
		printf '| %.0f | %.0f | %.1f |\n' "$(echo "$during / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" "$drained"
	} >>"$OUT"
}

drop_slots
sql postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
{
	echo
	echo "pgoutput runs with protocol 2 and streaming on, for pg_recvlogical and pg2kinesis alike: a transaction larger than logical_decoding_work_mem (64 MB by default) arrives before it commits, and pg2kinesis spools it to disk until the commit."
} >>"$OUT"
cat "$OUT"
