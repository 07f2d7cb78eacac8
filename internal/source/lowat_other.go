//go:build !unix

package source

import "errors"

func setRcvLowat(uintptr, int) error { return errors.New("SO_RCVLOWAT: not on this system") }
