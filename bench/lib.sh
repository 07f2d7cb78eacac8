# Helpers of bench/run.sh, which sources this after setting ROOT, PG_HOST,
# PG_PORT, PG_BIN, DB, RUNS, ROWS, SINGLE_ROWS, KINESIS, KINESIS_PORT and
# WAIT.
# shellcheck shell=bash

sql() { psql -X -q -v ON_ERROR_STOP=1 -At "host=$PG_HOST port=$PG_PORT user=postgres dbname=$1" -c "$2"; }

recv_options() { # the options pg2kinesis passes, for a like-for-like ceiling
	case $1 in
	wal2json) echo "-o format-version=2 -o include-xids=1 -o include-timestamp=1 -o include-lsn=1" ;;
	pgoutput) echo "-o proto_version=2 -o publication_names=pg2kinesis -o streaming=on" ;;
	test_decoding) echo "-o include-timestamp=1" ;;
	esac
}

prepare() { # prepare PLUGIN SHAPE: fresh database, a slot per reader's run, then the workload
	local plugin=$1 shape=$2
	drop_slots
	sql postgres "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
	sql postgres "CREATE DATABASE $DB"
	sql $DB "CREATE TABLE t (id bigint PRIMARY KEY, n int, body text, ts timestamptz, j jsonb)"
	sql $DB "CREATE PUBLICATION pg2kinesis FOR ALL TABLES" # pgoutput's; before the slots
	local readers="recv stdout kinesis"
	[ "$shape" != huge ] || readers="recv stdout"
	for r in $readers; do
		for i in $(seq "$RUNS"); do
			sql $DB "SELECT pg_create_logical_replication_slot('bench_$r$i', '$plugin')" >/dev/null
		done
	done
	local row="g, g % 1000, repeat(md5(g::text), 3), now(), jsonb_build_object('k', g, 'v', 'x')"
	if [ "$shape" = none ]; then
		:
	elif [ "$shape" = huge ]; then
		sql $DB "INSERT INTO t SELECT $row FROM generate_series(1, $ROWS) g"
	elif [ "$shape" = batch ]; then
		sql $DB "DO \$\$ BEGIN FOR i IN 0..$((ROWS / 1000 - 1)) LOOP
			INSERT INTO t SELECT $row FROM generate_series(i * 1000 + 1, i * 1000 + 1000) g; COMMIT; END LOOP; END \$\$"
	else
		sql $DB "DO \$\$ BEGIN FOR g IN 1..$SINGLE_ROWS LOOP
			INSERT INTO t SELECT $row; COMMIT; END LOOP; END \$\$"
	fi
	# The insert position, past the last commit: the services run with
	# synchronous_commit off, so the write position (pg_current_wal_lsn)
	# can still be short of it.
	sql $DB "SELECT pg_current_wal_insert_lsn()"
	# Autovacuum would start on the new rows during the first reader's
	# run. After the end: a reader's flush position passes WAL with no
	# change only on its next keepalive.
	sql $DB "VACUUM ANALYZE t"
}

drop_slots() { # the bench's slots, their readers (of a run cut short) ended first
	pkill -f -- "-[sS] bench_(recv|stdout|kinesis|lat)[0-9]* " 2>/dev/null || true
	for _ in $(seq 50); do
		sql postgres "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE 'bench_%' AND active_pid IS NOT NULL" >/dev/null
		[ "$(sql postgres "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'bench_%' AND active")" = 0 ] && break
		sleep 0.1
	done
	sql postgres "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'bench_%' AND NOT active" >/dev/null
}

metrics_port() { # LOG: the metrics port of the pg2kinesis that writes LOG, once it serves
	sed -n 's/.*msg="serving metrics and health checks" addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1"
}

metric() { # PORT NAME: the value of metric NAME, as an integer (an awk per call: not for a timed run's poll, see wait_flushed)
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	awk -v n="$2" '$1 == n {printf "%.0f\n", $2}' <&3
	exec 3<&-
}

wait_flushed() { # PID LOG LSN: until the pg2kinesis PID, logging to LOG, has every change up to LSN acknowledged
	# Its own flush position, polled on /metrics every 50 ms by one
	# process (tools/benchwait): polling the slot would start a psql (and
	# a backend) 20 times a second, and a shell loop a process, on the
	# cores that the walsender and pg2kinesis share.
	# The readers run in subshells (read < <(...), where set -e holds, not
	# $(...), where it does not): the main shell's EXIT trap does not see
	# them, so a failure here stops the reader itself.
	"$WAIT" -pid "$1" -log "$2" -lsn "$3" || { kill "$1" 2>/dev/null; exit 1; }
}

# kinesis_call OPERATION JSON: one call of kinesalite's API. A throughput
# run's stream is made before the run, as its slot is, so that the run
# times reading alone (pg_recvlogical creates nothing), and deleted after
# it. kinesalite checks no signature.
kinesis_call() {
	curl -sf -o /dev/null -X POST "$KINESIS/" -H 'Content-Type: application/x-amz-json-1.1' \
		-H "X-Amz-Target: Kinesis_20131202.$1" -H "X-Amz-Date: $(date -u +%Y%m%dT%H%M%SZ)" \
		-H "Authorization: AWS4-HMAC-SHA256 Credential=bench/$(date -u +%Y%m%d)/$AWS_REGION/kinesis/aws4_request, SignedHeaders=host, Signature=0" \
		-d "$2" || { echo "bench: $1 $2 in kinesalite at $KINESIS failed" >&2; exit 1; }
}

median() { # "SECONDS CPU RSS"...: the run of median seconds, whole
	printf '%s\n' "$@" | sort -n -k1,1 | sed -n "$((($# + 1) / 2))p"
}

spread() { # "SECONDS CPU RSS"...: the slowest run's seconds and the fastest's, joined by |
	printf '%s\n' "$@" | sort -n -k1,1 | awk 'NR == 1 {f = $1} {s = $1} END {print s "|" f}'
}

# start_kinesalite starts the kinesalite the Kinesis runs send to, at the
# lowest CPU priority, and sets KINESALITE_PRIORITY to what applied. It
# stands in for Kinesis, which runs on other machines than the database;
# here it shares the walsender's cores and takes about 2 s of CPU per
# million rows. At normal priority that CPU came out of the walsender's
# core (its wait for a CPU grew from 0.02 s to 0.1-0.3 s a run) and cost
# the Kinesis runs 2-4 % of the ceiling. Where autogroup is on, CPU is
# weighed per session: kinesalite gets a session of its own and sets its
# nice from inside, after setsid (from outside, the write can come first
# and reach the bench's session).
start_kinesalite() {
	local port=$KINESIS_PORT own self
	port_free "$port" PG2KINESIS_BENCH_KINESIS_PORT
	# shellcheck disable=SC2016 # $@ is the inner shell's
	setsid bash -c '{ echo 19 >/proc/self/autogroup; } 2>/dev/null; exec nice -n 19 node "$@"' _ \
		"$ROOT/scripts/kinesalite.js" "$port" >/tmp/bench-kinesalite.log 2>&1 </dev/null &
	KINESALITE_PID=$!
	await_listening "$KINESALITE_PID" "$port" /tmp/bench-kinesalite.log
	# Its session is its own pid: setsid did not fork, and $! is
	# kinesalite.
	if [ "$(cut -d' ' -f6 "/proc/$KINESALITE_PID/stat")" != "$KINESALITE_PID" ]; then
		echo "bench: kinesalite (pid $KINESALITE_PID) is not in a session of its own" >&2
		exit 1
	fi
	own=$(cat "/proc/$KINESALITE_PID/autogroup" 2>/dev/null) || own=
	self=$(cat "/proc/$$/autogroup" 2>/dev/null) || self=
	KINESALITE_PRIORITY="at nice 19 only (its session's autogroup nice could not be set; where autogroup is on, its session's weight, not its own nice, is what the walsender's session competes with)"
	if [[ $own == *" nice 19" && ${own%% *} != "${self%% *}" ]]; then
		KINESALITE_PRIORITY="at the lowest CPU priority, in a session of its own (autogroup nice 19)"
	fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; } # PORT: whether something accepts connections on it

port_free() { # PORT VARIABLE: exits 1 if something listens on PORT already; VARIABLE names the setting that moves it
	if listening "$1"; then
		echo "bench: port $1 is taken; stop what listens there or set $2" >&2
		exit 1
	fi
}

await_listening() { # PID PORT LOG: until the kinesalite PID, logging to LOG, accepts connections on PORT (10 s at most)
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		listening "$2" && return
		sleep 0.1
	done
	echo "bench: kinesalite did not start on port $2; see $3" >&2
	exit 1
}
