#!/usr/bin/env bash
# The version matrix (make test-matrix): for each PostgreSQL major given
# (default 12 to 18), start that server with scripts/services.sh, run the
# integration tests that depend on the server against it, and print one
# line per version:
#   PG 13: ok (181 passed, 39 skipped, 95 s)
#   PG 17: FAIL (2 failed: TestA TestB/pgoutput; log /tmp/...)
# Exit status 1 if any version failed.
#
# The tests: all of internal/source (slot management, streaming, the
# publication), internal/pipeline (each format's golden output, keys,
# pgoutput's streamed transactions, snapshots) and internal/slotwatch (the
# heartbeat), and in cmd/pg2kinesis the end-to-end runs, kill -9 and
# restart faults, decoding on a standby (16+) and a standby's promotion
# (17+) named below. wal2json is tested on 15 only, the Debian
# server that has it; a test a server is too old for (pgoutput's streaming
# before 14, say) skips saying so (testenv.RequireMajor). Without -race:
# make test runs the race detector on 15; here the server is what varies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VERSIONS=${*:-12 13 14 15 16 17 18}
GO=${GO:-go}
PACKAGES="./internal/source/ ./internal/pipeline/ ./internal/slotwatch/"
CMD_TESTS='^(TestFaultKillNine|TestFaultKillNinePgoutput|TestFaultKillNinePgoutputStreaming|TestFaultKillNineWal2json|TestFaultPostgresRestart|TestFaultSlotDropped|TestFaultStandbyTakesOver|TestEndToEndOrderPerRow|TestIdleSlotKeepsUpWithOtherDatabases|TestSnapshotKeys|TestSlotFailoverFlag|TestStandbyDecoding|TestStandbyStartChecks|TestFaultPromotion|TestFaultPromotionWithoutFailoverSlot)$'
LOGDIR=${PG2KINESIS_MATRIX_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/pg2kinesis-matrix.XXXXXX")}
mkdir -p "$LOGDIR"
# A missing server fails a test here rather than skipping it.
export CI=true

failed_versions=()
for v in $VERSIONS; do
	log=$LOGDIR/pg$v.log
	start=$(date +%s)
	# A start that fails is tried once more after a pause (what failed the
	# first time is in the log); a second failure prints the log's tail and
	# the free disk here, since CI keeps only what this script prints.
	if ! scripts/services.sh start --pg-version "$v" >"$log" 2>&1; then
		sleep 10
		scripts/services.sh stop --pg-version "$v" >>"$log" 2>&1 || true
		if ! scripts/services.sh start --pg-version "$v" >>"$log" 2>&1; then
			echo "PG $v: FAIL (the server did not start; log $log)"
			{
				tail -n 20 "$log"
				pglog=$(sed -n "s/^.*see \(.*\)$/\1/p" "$log" | tail -1)
				[ -n "$pglog" ] && [ -f "$pglog" ] && tail -n 20 "$pglog"
				df -h "$LOGDIR" .
			} 2>&1 | sed "s/^/  pg$v: /"
			failed_versions+=("$v")
			continue
		fi
		echo "PG $v: the server started on the second try (the first failure is in $log)"
	fi
	# The DSN, kinesalite and, for throwaway clusters, the server programs
	# of version v (services.sh env prints them as shell assignments).
	unset PG2KINESIS_TEST_PG_BIN
	eval "$(scripts/services.sh env --pg-version "$v" | sed 's/^/export /')"
	rc=0
	{
		$GO test -count=1 -v -timeout 20m $PACKAGES || rc=$?
		$GO test -count=1 -v -timeout 20m -run "$CMD_TESTS" ./cmd/pg2kinesis/ || rc=$?
		echo "rc=$rc"
	} >>"$log" 2>&1
	rc=$(sed -n 's/^rc=//p' "$log" | tail -1)
	secs=$(($(date +%s) - start))
	passed=$(grep -cE -- '^\s*--- PASS: ' "$log" || true)
	skipped=$(grep -cE -- '^\s*--- SKIP: ' "$log" || true)
	fails=$(sed -nE 's/^\s*--- FAIL: ([^ ]+).*/\1/p' "$log" | tr '\n' ' ')
	if [ "$rc" = 0 ] && [ -z "$fails" ]; then
		echo "PG $v: ok ($passed passed, $skipped skipped, $secs s)"
	else
		echo "PG $v: FAIL (${fails:-go test failed outside a test}; $passed passed, $secs s; log $log)"
		failed_versions+=("$v")
	fi
	# 15 is the default service that make test uses too: leave it running.
	[ "$v" = 15 ] || scripts/services.sh stop --pg-version "$v" >>"$log" 2>&1 || true
done
echo "logs: $LOGDIR"
[ ${#failed_versions[@]} = 0 ]
