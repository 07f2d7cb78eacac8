// Package snapshot reads the rows a table already holds, in chunks, and
// shapes each as the event the configured logical decoding plugin's parser
// would give for an INSERT of that row, with Op decode.Read. The formats,
// the key logic and the stream-side merge (DBLog watermarks, package
// pipeline) then treat a snapshot row and a decoded change alike, and a
// row's key renders to the same text from either.
//
//	t, err := snapshot.Describe(ctx, conn, name, key, plugin)
//	var after []string // nil: from the start
//	for {
//		c, err := t.Read(ctx, conn, after, snapshot.Limit{Rows: 1000})
//		// publish c.Rows
//		if c.Done {
//			break
//		}
//		after = c.Next
//	}
//
// Each Read is one statement, so one short transaction of its own: no
// transaction is held across chunks, and the chunks are not one consistent
// snapshot (the watermarks make them consistent with the stream).
//
// A table with a key is read by keyset, in key order:
// WHERE (k1, k2) > (after) ORDER BY k1, k2 LIMIT n. The cursor is the last
// row's key values as Postgres prints them, sent back as text parameters
// typed by the key columns' types, so any orderable type works. A table
// without a key is read by ranges of physical blocks (ctid), with no order
// and no consistency guarantee at all: a row an UPDATE moves to a block
// already read is missed, one moved ahead is read twice. Its cursor is the
// next block number.
//
// How each plugin's event is matched, as checked against the plugins on
// PostgreSQL 15 (shape_live_test.go):
//   - test_decoding: types as format_type prints them without typmod, the
//     table as schema.table with identifiers quoted where needed; integers,
//     oid, real, double precision and numeric (NaN and Infinity included)
//     are numbers, booleans true and false, everything else (domains, bit
//     strings, arrays ...) strings. Stored generated columns are included.
//     No key is named.
//   - wal2json: types with their typmod, the table unquoted; the same
//     numbers, except that NaN and ±Infinity are null, as wal2json prints
//     them; bytea without its \x. Stored generated columns are included.
//     PrimaryKey is the primary key's columns in column order (include-pk),
//     stated even when empty. A numeric or float key that is NaN or
//     ±Infinity is therefore null, in the stream and the snapshot alike:
//     such rows of one table share the empty key text.
//   - pgoutput: the row is encoded as the Relation, Type and Insert
//     messages the server would send and decoded by the pgoutput parser
//     itself, so its type names, kinds and IdentityKey are the parser's.
//     Generated columns are left out, as pgoutput does on every version
//     unless a PostgreSQL 18 publication has publish_generated_columns =
//     stored or lists them, which is not matched. Neither are publication
//     column lists or row filters (PostgreSQL 15), nor
//     publish_via_partition_root: every row and column is read, and named
//     by its own table.
//
// Values are the text output functions print in the reading session, which
// is what the plugins print in the walsender's: the connection passed to
// Read must share the replication connection's DateStyle, IntervalStyle,
// TimeZone, extra_float_digits, bytea_output and search_path (which
// decides whether a type name is schema-qualified), as connections made
// from the same configuration do. extra_float_digits must stay above 0 for
// a float key to round-trip exactly through the cursor.
//
// Virtual generated columns (PostgreSQL 18) are never read; how the
// plugins print them is untested here.
package snapshot
