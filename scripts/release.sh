#!/usr/bin/env bash
# Release artefacts, into dist/ (make release, make image):
#
#   scripts/release.sh binaries   static binaries for each platform + SHA256SUMS
#   scripts/release.sh image      OCI images of the linux binaries (run binaries first)
#
# The version, commit and commit time are worked out here only, so that the
# binaries, the images' labels and the file names agree. Environment
# (all optional): VERSION, COMMIT and SOURCE_DATE_EPOCH override what git
# says; PLATFORMS ("linux/amd64 linux/arm64 darwin/arm64"), DIST (dist),
# GO (go), IMAGE_PLATFORMS (linux/amd64 linux/arm64: the linux binaries
# make image packs), IMAGE_LICENSES (the org.opencontainers.image.licenses label,
# an SPDX expression; NOASSERTION, SPDX's "not stated", until the
# repository has a license: choosing one is the owners' call, not the
# build's), CA_CERTS (the CA bundle put into the image; by default the
# host's, and make image fails when it has none).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GO=${GO:-go}
DIST=${DIST:-dist}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 darwin/arm64}
SOURCE_URL=${SOURCE_URL:-https://github.com/pg2kinesis/pg2kinesis}
IMAGE_PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}
IMAGE_LICENSES=${IMAGE_LICENSES:-NOASSERTION}
# An image without CA certificates fails every TLS call (Kinesis, RDS) at
# run time: without a bundle found here, make image fails unless CA_CERTS
# is set, to a file or to "" on purpose.
if [ -z "${CA_CERTS+set}" ]; then
	CA_CERTS=""
	for f in /etc/ssl/certs/ca-certificates.crt /etc/ssl/cert.pem /etc/pki/tls/certs/ca-bundle.crt; do
		if [ -f "$f" ]; then
			CA_CERTS=$f
			break
		fi
	done
	CA_MISSING=$([ -n "$CA_CERTS" ] || echo yes)
fi

# Outside a Git clone (a source tarball) git fails: the version is then
# "dev" and the commit "unknown", as a plain go build would report them.
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if [ -z "${COMMIT:-}" ]; then
	COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
	# As the version says, and as a plain go build's fallback does.
	if [ "$COMMIT" != unknown ] && ! git diff --quiet HEAD 2>/dev/null; then
		COMMIT=$COMMIT-dirty
	fi
fi
# The commit time, not the build time, so that building the same commit
# again gives the same image digest.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

sums() {
	# Every artefact of this version, and nothing left from another one.
	(
		cd "$DIST"
		files=(pg2kinesis-"$VERSION"-*)
		if command -v sha256sum >/dev/null; then
			sha256sum "${files[@]}"
		else
			shasum -a 256 "${files[@]}" # macOS
		fi
	) >"$DIST/SHA256SUMS.tmp"
	mv "$DIST/SHA256SUMS.tmp" "$DIST/SHA256SUMS"
}

binaries() {
	mkdir -p "$DIST"
	# Images of an earlier build of this version hold the old binaries:
	# SHA256SUMS must not list them.
	rm -f "$DIST"/pg2kinesis-"$VERSION"-*
	# CGO_ENABLED=0: no libc, so the binary runs on any distribution and on
	# an empty image. -trimpath and an empty build ID: the same commit builds
	# the same bytes on any machine. -buildvcs=false: the commit is stamped
	# below, and go build's own VCS check fails in some checkouts.
	local ldflags="-s -w -buildid= -X main.buildVersion=$VERSION -X main.buildCommit=$COMMIT"
	for p in $PLATFORMS; do
		local os=${p%/*} arch=${p#*/}
		local out="$DIST/pg2kinesis-$VERSION-$os-$arch"
		echo "build $out"
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build -trimpath -buildvcs=false \
			-ldflags "$ldflags" -o "$out" ./cmd/pg2kinesis
	done
	sums
}

image() {
	local args=() p
	if [ "${CA_MISSING:-}" = yes ]; then
		echo "release.sh image: no CA bundle on this machine (looked for /etc/ssl/certs/ca-certificates.crt, /etc/ssl/cert.pem, /etc/pki/tls/certs/ca-bundle.crt); set CA_CERTS=file, or CA_CERTS= for an image without one" >&2
		exit 1
	fi
	for p in $IMAGE_PLATFORMS; do
		local bin="$DIST/pg2kinesis-$VERSION-${p%/*}-${p#*/}"
		[ -f "$bin" ] || { echo "release.sh image: $bin is missing; run make release first" >&2; exit 1; }
		args+=(--binary "$p=$bin" --image-out "$p=$bin.image.tar")
	done
	[ -z "$CA_CERTS" ] || args+=(--ca-certs "$CA_CERTS")
	"$GO" run -buildvcs=false ./tools/mkimage \
		--version "$VERSION" --revision "$COMMIT" --created "$SOURCE_DATE_EPOCH" \
		--source "$SOURCE_URL" --licenses "$IMAGE_LICENSES" \
		--index-out "$DIST/pg2kinesis-$VERSION-oci.tar" "${args[@]}"
	sums
}

case "${1:-}" in
binaries) binaries ;;
image) image ;;
*)
	echo "usage: $0 binaries|image" >&2
	exit 2
	;;
esac
