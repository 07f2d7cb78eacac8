package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

type held struct {
	lsn  pglogrepl.LSN
	data string
}

func replay(t *testing.T, s *Spool, xid uint32) []held {
	t.Helper()
	var got []held
	if err := s.Replay(xid, func(lsn pglogrepl.LSN, data []byte) error {
		got = append(got, held{lsn, string(data)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSpool plays the orders in which the server streams, aborts and
// commits transactions and their subtransactions, and checks what a
// commit replays: everything held, in order, but what was aborted.
func TestSpool(t *testing.T) {
	type step struct {
		op          string // append, abort
		xid, subxid uint32
		data        string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string // replayed at the commit of xid 10
	}{
		{"all committed", []step{{"append", 10, 10, "a"}, {"append", 10, 10, "b"}}, []string{"a", "b"}},
		{"subtransaction aborted", []step{
			{"append", 10, 10, "a"}, {"append", 10, 11, "s1"}, {"append", 10, 11, "s2"},
			{"abort", 10, 11, ""}, {"append", 10, 10, "after"},
		}, []string{"a", "after"}},
		{"nested subtransactions aborted together", []step{
			{"append", 10, 11, "s"}, {"append", 10, 12, "n"}, {"abort", 10, 11, ""}, {"append", 10, 13, "t"},
		}, []string{"t"}},
		{"a later sibling aborted, an earlier one kept", []step{
			{"append", 10, 11, "s"}, {"append", 10, 12, "n"}, {"abort", 10, 12, ""},
		}, []string{"s"}},
		{"abort of an unknown subtransaction", []step{{"append", 10, 10, "a"}, {"abort", 10, 99, ""}}, []string{"a"}},
		{"other transactions interleaved", []step{
			{"append", 10, 10, "a"}, {"append", 20, 20, "x"}, {"append", 10, 10, "b"}, {"abort", 20, 20, ""},
		}, []string{"a", "b"}},
		{"whole transaction aborted", []step{{"append", 10, 10, "a"}, {"abort", 10, 10, ""}}, nil},
		{"large messages", []step{{"append", 10, 10, string(make([]byte, 200<<10))}, {"append", 10, 10, "z"}},
			[]string{string(make([]byte, 200<<10)), "z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t.TempDir())
			defer s.Close()
			for i, st := range tc.steps {
				var err error
				if st.op == "append" {
					err = s.Append(st.xid, st.subxid, pglogrepl.LSN(i+1), []byte(st.data))
				} else {
					err = s.Abort(st.xid, st.subxid)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, h := range replay(t, s, 10) {
				got = append(got, h.data)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("replayed %d messages %q, want %d", len(got), trim(got), len(tc.want))
			}
			if s.Len(10) != 0 || len(replay(t, s, 10)) != 0 {
				t.Fatal("a replayed transaction is still held")
			}
		})
	}
}

func trim(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%.10q", v)
	}
	return out
}

// TestSpoolKeepsLSNsAndLeavesNoFiles checks the LSNs come back with their
// messages and that the files are unlinked from the start, so that a
// crash leaves nothing in the directory.
func TestSpoolKeepsLSNsAndLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	for i := range 1000 {
		if err := s.Append(7, 7, pglogrepl.LSN(1000+i), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("spool left %d files in %s", len(entries), dir)
	}
	got := replay(t, s, 7)
	if len(got) != 1000 || got[999] != (held{1999, "m999"}) || got[0] != (held{1000, "m0"}) {
		t.Fatalf("replayed %d, first %v, last %v", len(got), got[0], got[len(got)-1])
	}
}

func TestSpoolReplayStopsOnError(t *testing.T) {
	s := New(t.TempDir())
	for i := range 3 {
		_ = s.Append(1, 1, pglogrepl.LSN(i), []byte("x"))
	}
	n := 0
	err := s.Replay(1, func(pglogrepl.LSN, []byte) error {
		n++
		return fmt.Errorf("sink down")
	})
	if err == nil || n != 1 || s.Len(1) != 0 {
		t.Fatalf("Replay = %v after %d calls, %d held; want the error after 1 call and nothing held", err, n, s.Len(1))
	}
}

func TestSpoolUnwritableDir(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "missing"))
	err := s.Append(1, 1, 0, []byte("x"))
	if err == nil {
		t.Fatal("Append into a missing directory succeeded")
	}
	if want := "--spool-dir"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say what to do (%s)", err, want)
	}
}
