//go:build !unix

package source

import "errors"

var errNoBatching = errors.New("read batching: not on this system")

// Batching never turns on here: setRcvLowat fails, so readFD is never
// called.
func setRcvLowat(uintptr, int) error { return errNoBatching }

func readFD(uintptr, []byte) (int, error) { return 0, errNoBatching }
