package spool

import (
	"fmt"
	"os"
)

// DirError is a spool directory that cannot hold files. It is the user's
// to fix, so the command treats it as bad usage (exit 2).
type DirError struct {
	Dir string
	Err error
}

func (e *DirError) Error() string {
	return fmt.Sprintf("--spool-dir %s cannot hold pgoutput's streamed transactions: %v; "+
		"create it as a directory this user may write to, point --spool-dir at one, or turn streaming off with --pg-streaming=false", e.Dir, e.Err)
}

func (e *DirError) Unwrap() error { return e.Err }

// CheckDir makes sure dir ("" is os.TempDir()) is a directory the spool
// can write to, creating it (0700: the files hold row data) if missing.
// It is checked at start because the spool first writes hours later, at
// the first large transaction, and would fail then and on every restart.
func CheckDir(dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &DirError{Dir: dir, Err: err}
	}
	// MkdirAll accepts an existing directory whatever its permissions:
	// only writing tells.
	f, err := os.CreateTemp(dir, "pg2kinesis-check-*")
	if err != nil {
		return &DirError{Dir: dir, Err: err}
	}
	name := f.Name()
	err = f.Close()
	if rmErr := os.Remove(name); err == nil {
		err = rmErr
	}
	if err != nil {
		return &DirError{Dir: dir, Err: err}
	}
	return nil
}
