#!/usr/bin/env bash
# The fault suite (make faults): every TestFault scenario of cmd/pg2kinesis
# against the local services (PostgreSQL 15), then the scenarios that 15
# is too old for (a standby's promotion with a failover slot: 17+) against
# PostgreSQL 17, started and stopped here with scripts/services.sh. Prints
# the scenarios' output, then one line:
#   19 passed, 0 failed
# A scenario counts as passed when it passed on either server; one that
# skipped on both counts as failed (with CI=true a missing service fails a
# test rather than skipping it). Exit status 1 if any failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
export CI=true
NEWER=17
log=$(mktemp)
trap 'rm -f "$log"' EXIT

total=$($GO test -race -list 'TestFault' ./cmd/pg2kinesis/ | grep -c '^TestFault' || true)
rc=0
$GO test -race -count=1 -run 'TestFault' ./cmd/pg2kinesis/ -v 2>&1 | tee "$log" || rc=1
# The scenarios that skipped (with CI=true only a server too old for them
# skips one), again on a newer server.
too_old=$(sed -nE 's/^--- SKIP: (TestFault[^ ]+) .*/\1/p' "$log" | sort -u | tr '\n' ' ')
if [ -n "$too_old" ]; then
	echo "== again on PostgreSQL $NEWER: $too_old"
	if scripts/services.sh start --pg-version "$NEWER"; then
		pattern="^($(echo $too_old | tr ' ' '|'))\$"
		(
			unset PG2KINESIS_TEST_PG_BIN
			eval "$(scripts/services.sh env --pg-version "$NEWER" | sed 's/^/export /')"
			$GO test -race -count=1 -run "$pattern" ./cmd/pg2kinesis/ -v 2>&1
		) | tee -a "$log" || rc=1
	else
		echo "PostgreSQL $NEWER did not start: its scenarios count as failed"
		rc=1
	fi
	scripts/services.sh stop --pg-version "$NEWER" >/dev/null || true
fi
passed=$(sed -nE 's/^--- PASS: (TestFault[^ ]+) .*/\1/p' "$log" | sort -u | wc -l)
failed=$((total - passed))
echo "$passed passed, $failed failed"
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
	echo "go test failed outside the scenarios: see above"
fi
[ "$failed" = 0 ] || rc=1
exit $rc
