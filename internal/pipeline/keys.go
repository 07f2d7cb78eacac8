package pipeline

import (
	"context"
	"slices"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// keying is how a change's key was found.
type keying uint8

const (
	keyed   keying = iota // the table's key, per the rule below
	keyless               // the table has no key: published only with --full-change
	// unknownTable: the catalog does not know the table (renamed or
	// dropped since the change, with test_decoding); published with the
	// columns of the old key the change carries, or none, never skipped.
	unknownTable
)

// key names the key columns of ev's change to t. One rule for every
// plugin, so that every change of a row carries the same key: the replica
// identity index's columns when the table has REPLICA IDENTITY USING
// INDEX (a delete carries nothing else), else the primary key's. The key
// comes from the change where the plugin says it, since it is the key as
// of the change, not as of now:
//   - pgoutput names the replica identity columns (under DEFAULT and
//     USING INDEX: ev.IdentityKey);
//   - wal2json names the primary key (include-pk) and, on updates and
//     deletes, the identity columns;
//   - otherwise (test_decoding; pgoutput under FULL or NOTHING) the
//     catalog as it is now.
func (h *changeHandler) key(ctx context.Context, ev *decode.Event, t decode.Table) ([]string, keying, error) {
	n := catalog.Name{Schema: t.Schema, Table: t.Name}
	if ev.IdentityKey != nil && len(ev.IdentityKey) < 2 {
		return ev.IdentityKey, keyed, nil
	}
	// The catalog knows the key order of a composite key, and whether a
	// table uses an index as its key: a table it has not seen yet is
	// looked up, not taken as keyless, even when the plugin names the key.
	k, status, err := h.keys.Lookup(ctx, n)
	if err != nil {
		return nil, keyless, err
	}
	switch {
	case ev.IdentityKey != nil:
		return h.keys.Ordered(n, ev.IdentityKey), keyed, nil
	case ev.KeyStated:
		return h.statedKey(ev, n, k)
	}
	if contradicts(ev, k, status) {
		if k, status, err = h.keys.Recheck(ctx, n); err != nil {
			return nil, keyless, err
		}
	}
	switch status {
	case catalog.Keyed:
		return k.Columns, keyed, nil
	case catalog.Keyless:
		return nil, keyless, nil
	}
	// The key the change carries: the old key's columns (test_decoding's
	// old-key is the replica identity, the whole row under FULL), none
	// for an insert.
	return oldNames(ev), unknownTable, nil
}

// statedKey is the key of a change whose plugin named the primary key as
// of the change (wal2json).
func (h *changeHandler) statedKey(ev *decode.Event, n catalog.Name, k catalog.Key) ([]string, keying, error) {
	// The catalog alone says that a table uses an index as its replica
	// identity (an insert does not), as of now: trusted while the change
	// has its columns.
	if k.Index && hasColumns(ev, k.Columns) {
		return k.Columns, keyed, nil
	}
	// An old key without the primary key's columns is an index's: the
	// table used one when the change was made.
	if len(ev.Old) > 0 && !oldHas(ev, ev.PrimaryKey) {
		return h.keys.Ordered(n, oldNames(ev)), keyed, nil
	}
	if len(ev.PrimaryKey) == 0 {
		return nil, keyless, nil
	}
	return h.keys.Ordered(n, ev.PrimaryKey), keyed, nil
}

// contradicts reports whether ev shows that the cached key of its table
// is out of date: an insert or update without a key column, an old key
// (which only a replica identity gives) that lacks one, or an old key of
// a table cached as keyless and not REPLICA IDENTITY FULL. A delete
// without an old key (REPLICA IDENTITY NOTHING) proves nothing.
func contradicts(ev *decode.Event, k catalog.Key, status catalog.Status) bool {
	switch {
	case ev.Op == decode.Truncate: // carries no row
		return false
	case status == catalog.Keyed && ev.Op != decode.Delete:
		return !hasColumns(ev, k.Columns)
	case status == catalog.Keyed:
		return len(ev.Old) > 0 && !oldHas(ev, k.Columns)
	case status == catalog.Keyless:
		// Under FULL an old row is the whole row: no evidence of a key.
		return len(ev.Old) > 0 && !k.Full
	}
	return false
}

func oldNames(ev *decode.Event) []string {
	if len(ev.Old) == 0 {
		return nil
	}
	names := make([]string, len(ev.Old))
	for i, c := range ev.Old {
		names[i] = c.Name
	}
	return names
}

// hasColumns reports whether every one of cols is in the change's new row
// or old key (a key column can be missing from the new row of an update
// that left it unchanged and TOASTed).
func hasColumns(ev *decode.Event, cols []string) bool {
	for _, c := range cols {
		if !named(ev.New, c) && !named(ev.Old, c) {
			return false
		}
	}
	return true
}

// oldHas reports whether every one of cols is in the change's old key.
func oldHas(ev *decode.Event, cols []string) bool {
	for _, c := range cols {
		if !named(ev.Old, c) {
			return false
		}
	}
	return true
}

func named(cols []decode.Column, name string) bool {
	return slices.ContainsFunc(cols, func(c decode.Column) bool { return c.Name == name })
}
