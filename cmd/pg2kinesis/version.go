package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time by scripts/release.sh:
//
//	-ldflags "-X main.buildVersion=v1.2.3 -X main.buildCommit=<full hash>"
//
// A plain go build leaves them empty; version and commit then fall back to
// what the Go toolchain recorded in the binary.
var (
	buildVersion string
	buildCommit  string
)

// version is the release version: the stamped one, else the module's
// (go install …@v1.2.3), else "dev".
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// commit is the Git commit built: the stamped one, else vcs.revision, which
// go build records unless -buildvcs=false (with "-dirty" when the tree had
// changes, as git describe says it), else "unknown".
func commit() string {
	if buildCommit != "" {
		return buildCommit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown"
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}

// versionLine is what --version prints. It starts "pg2kinesis <version>",
// as it always has, so scripts that read the second word keep working.
func versionLine() string {
	return fmt.Sprintf("pg2kinesis %s (commit %s, %s)", version(), commit(), runtime.Version())
}
