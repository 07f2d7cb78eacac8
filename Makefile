# pg2kinesis. `make demo` and `make test` do all set-up on a fresh machine.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build release image services services-stop services-status lint test check test-matrix faults demo bench bench-snapshot bench-snapshot-sweep

all: build

build:
	$(GO) build -o bin/pg2kinesis ./cmd/pg2kinesis

# Static binaries for linux/amd64, linux/arm64 and darwin/arm64 in dist/,
# stamped with git describe's version, and dist/SHA256SUMS.
release:
	GO="$(GO)" scripts/release.sh binaries

# OCI images of the linux binaries, without Docker: one docker-archive per
# architecture and a multi-arch OCI layout (dist/pg2kinesis-<version>-oci.tar).
image: release
	GO="$(GO)" scripts/release.sh image

# Local Postgres 15 (wal_level=logical, wal2json) and kinesalite on loopback.
services:
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

services-status:
	scripts/services.sh status

lint:
	@unformatted=$$(gofmt -l cmd internal tools); [ -z "$$unformatted" ] || { echo "gofmt: not formatted: $$unformatted" >&2; exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The test command: CI runs exactly this (see .ci/run). After the whole
# suite on PostgreSQL 15, the version matrix on the other versions (15's
# share of it ran just before, with -race): about 8 minutes on 2 cores
# (make test-matrix, all seven: 9.5 minutes), which keeps .ci/run well
# under the 30 minutes that allow the whole matrix in CI.
MATRIX_IN_TEST ?= 12 13 14 16 17 18
test: services lint
	$(GO) test -race -count=1 -timeout 20m ./...
	@[ -z "$(strip $(MATRIX_IN_TEST))" ] || scripts/matrix.sh $(MATRIX_IN_TEST)

# The tests without setting anything up: go test ./... (cached, without
# -race), which skips what needs a service that is not running, then one
# line naming those tests (go test alone cannot: it hides a passing
# package's output).
check:
	bash -o pipefail -c '$(GO) test -json -timeout 20m ./... | $(GO) run ./tools/testsummary'

# The version matrix: the server-dependent tests (slots, streaming, each
# format's golden output, kill -9 and restart) on each PostgreSQL major of
# PG_VERSIONS, started by scripts/services.sh (12-14 and 16-18 from npm, 15
# Debian's, the only one with wal2json); one line per version.
PG_VERSIONS ?= 12 13 14 15 16 17 18
test-matrix:
	scripts/matrix.sh $(PG_VERSIONS)

# The fault suite alone (make test runs it too): kill -9, Postgres restart,
# Kinesis outage, network cut and silence, dropped slot, standby takeover,
# reshard (split and merge), snapshots, under load; the scenarios that
# PostgreSQL 15 is too old for (a promotion with a failover slot) run
# again on 17 (scripts/faults.sh).
# CI=true: a missing service fails the suite; a scenario that did not pass
# (failed, skipped on both servers, or cut short by a panic or timeout)
# counts as failed.
faults: services
	GO=$(GO) scripts/faults.sh

# Streams a small workload from the local Postgres and prints it; stops the
# services at the end if it started them.
demo: build
	scripts/demo.sh

# Drains the same slot contents with pg_recvlogical and pg2kinesis; writes
# bench/results/latest.md. Sizes and parts: see the head of bench/run.sh.
# Then the snapshot part (bench-snapshot).
bench: build services
	bench/run.sh
	bench/snapshot.sh

# An initial snapshot of a million rows against psql's COPY, and the lag
# under load during one; writes bench/results/snapshot.md (see the head of
# bench/snapshot.sh). It starts the services only if they do not answer.
bench-snapshot: build
	bench/snapshot.sh

# The snapshot's --snapshot-chunk-rows and --snapshot-workers, into stdout;
# writes bench/results/snapshot-sweep.md.
bench-snapshot-sweep: build
	bench/snapshot.sh sweep
