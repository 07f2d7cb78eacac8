package source

import "golang.org/x/sys/unix"

// queued is the count of bytes waiting in socket fd's receive queue, or
// 0 if it cannot tell (the read then waits for a batch or the cap).
func queued(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
