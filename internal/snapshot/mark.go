package snapshot

import (
	"encoding/json"
	"fmt"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
)

// Prefix is the logical-message prefix of the watermarks. The heartbeat's
// prefix is "pg2kinesis": a different one, so neither is taken for the
// other.
const Prefix = "pg2kinesis-snapshot"

// Mark is a watermark, written into the WAL with
// pg_logical_emit_message(true, Prefix, content) around each chunk read:
// Low before the read, high after it. Run names the process that wrote it
// (a stream read again after a restart carries the marks of runs that are
// gone, and other pg2kinesis processes on the same database write theirs:
// both are ignored), Slot the slot it snapshots for.
type Mark struct {
	Slot  string       `json:"slot"`
	Run   string       `json:"run"`
	Chunk uint64       `json:"chunk"`
	High  bool         `json:"high"`
	Table catalog.Name `json:"-"`
	// Schema and Table, flat in the message, so that a person reading the
	// WAL (pg_waldump, a plugin's output) sees which table it is.
	Schema string `json:"schema"`
	Name   string `json:"table"`
}

// Content is the message's content.
func (m Mark) Content() string {
	m.Schema, m.Name = m.Table.Schema, m.Table.Table
	b, _ := json.Marshal(m) // strings, a number and a bool: cannot fail
	return string(b)
}

// ParseMark reads a watermark's content.
func ParseMark(content []byte) (Mark, error) {
	var m Mark
	if err := json.Unmarshal(content, &m); err != nil {
		return Mark{}, fmt.Errorf("snapshot watermark %q: %w", content, err)
	}
	if m.Run == "" || m.Chunk == 0 {
		return Mark{}, fmt.Errorf("snapshot watermark %q: no run or chunk", content)
	}
	m.Table = catalog.Name{Schema: m.Schema, Table: m.Name}
	return m, nil
}
