package snapshot

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Invisible names the transactions a chunk's read could not see, by their
// 32-bit xids: those its snapshot saw as running (xip), and every one from
// the snapshot's xmax on, which had not finished when it was taken. The
// latter matter as much: a transaction with a later xid than the low
// watermark's can write its commit record first and still be running
// when the read starts, after the watermark's has finished, and its xid is
// then at or past xmax, never in xip.
type Invisible struct {
	Running []uint32
	From    uint32 // the snapshot's xmax; 0 (never an xid): none from there
}

func (v Invisible) has(xid uint32) bool {
	if v.From != 0 && int32(xid-v.From) >= 0 { // modulo 2^32, as Postgres compares xids
		return true
	}
	return slices.Contains(v.Running, xid)
}

// parseSnapshot reads a snapshot as txid_current_snapshot prints it,
// xmin:xmax:xip,..., into what it cannot see. The xids carry their epoch
// above 32 bits: the stream's are 32-bit.
func parseSnapshot(s string) (Invisible, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Invisible{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	xmax, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || xmax == 0 {
		return Invisible{}, fmt.Errorf("snapshot %q: xmax %q", s, parts[1])
	}
	v := Invisible{From: uint32(xmax)}
	if parts[2] == "" {
		return v, nil
	}
	for _, x := range strings.Split(parts[2], ",") {
		xid, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return Invisible{}, fmt.Errorf("snapshot %q: xid %q", s, x)
		}
		v.Running = append(v.Running, uint32(xid))
	}
	return v, nil
}
