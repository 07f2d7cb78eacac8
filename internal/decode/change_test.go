package decode

import (
	"testing"

	"github.com/jackc/pglogrepl"
)

func TestParseLSN(t *testing.T) {
	for _, s := range []string{"0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF", "a/b"} {
		want, err := pglogrepl.ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := ParseLSN([]byte(s)); !ok || got != want {
			t.Errorf("ParseLSN(%q) = %s %t, want %s", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "/", "0/", "/0", "1/2/3", "g/0", "123456789/0", "0/-1"} {
		if _, ok := ParseLSN([]byte(s)); ok {
			t.Errorf("ParseLSN(%q) accepted", s)
		}
	}
}
