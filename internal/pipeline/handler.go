package pipeline

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/slotwatch"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

// The handler's view of the stages beside it, declared where it uses
// them: the production types satisfy them (the tests wire those same
// types), and the handler depends on no more than it calls.
type (
	// replication is the source as the handler drives it: a long replay
	// keeps the connection alive.
	replication interface {
		StatusIfDue() error
	}
	// checkpointer numbers the records and turns acks into a flush LSN,
	// which the source reads from it (source.Position).
	checkpointer interface {
		Record() uint64
		Commit(lsn pglogrepl.LSN, at time.Time)
		Ack(seqs ...uint64)
		Idle(walEnd pglogrepl.LSN)
	}
	// keyCache names the key columns of the tables the plugin does not.
	keyCache interface {
		Lookup(ctx context.Context, n catalog.Name) (catalog.Key, catalog.Status, error)
		Recheck(ctx context.Context, n catalog.Name) (catalog.Key, catalog.Status, error)
		Ordered(n catalog.Name, cols []string) []string
	}
)

var (
	_ replication  = (*source.Source)(nil)
	_ checkpointer = (*checkpoint.Tracker)(nil)
	_ keyCache     = (*catalog.Cache)(nil)
)

// changeHandler decodes, filters and formats each plugin message and hands
// the records to the sink. Every record is numbered by the checkpoint
// tracker; a transaction's commit is flushed to Postgres only once all its
// records, and all records before them, are acknowledged.
type changeHandler struct {
	src     replication
	tracker checkpointer
	parser  parser
	filter  *filter.Filter
	keys    keyCache
	format  format.Formatter
	sink    sink.Sink
	log     *slog.Logger

	publishKeyless bool // see Config.publishesKeyless
	partitionKey   format.PartitionKey
	skipOversize   bool
	route          func(schema, table string) (string, error) // nil: one stream

	buf      []byte
	keyBuf   []byte
	xid      uint32 // the transaction whose xid xidKey holds
	xidKey   string
	streams  *streams // pgoutput's streamed transactions; nil for other plugins
	delivery *delivery
	// The tables warned of once: without a key, unknown to the catalog,
	// with a change too large.
	noKeyWarned, unknownWarned, oversizeWarned map[catalog.Name]bool
	skippedNoKey                               int // changes of tables without a primary key, not published
	skippedLarge                               int // changes over the record limit, skipped by --oversize=skip

	stats   *stats
	changes *metrics.Changes
	tables  map[catalog.Name]*tableCounters
	last    *tableCounters // the last table counted: usually the next one too

	// The open transaction's commit LSN and time, when its begin message
	// gives them (wal2json, pgoutput): not every change message repeats
	// them, and the JSON record carries them on each change.
	commitLSN  pglogrepl.LSN
	commitTime time.Time
	txXID      uint32 // the open transaction's, from its begin

	// Snapshots: the exchange with the snapshot's workers (nil: none) and
	// the state table, whose changes are never published.
	snap       *snapshot.Exchange
	stateTable catalog.Name
}

func newChangeHandler(src replication, tr *checkpoint.Tracker, p parser, f *filter.Filter, keys keyCache,
	fm format.Formatter, snk sink.Sink, cfg Config, log *slog.Logger) *changeHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pk := cmp.Or(cfg.PartitionKey, format.ByXID) // Run rejected any other value
	changes := metrics.NewChanges()              // counted, not exported
	if cfg.Metrics != nil {
		changes = cfg.Metrics.Changes
	}
	return &changeHandler{
		src: src, tracker: tr, parser: p, filter: f, keys: keys, format: fm, sink: snk, log: log,
		publishKeyless: cfg.publishesKeyless(), partitionKey: pk, skipOversize: cfg.Oversize == sink.OversizeSkip, route: cfg.Route,
		noKeyWarned: map[catalog.Name]bool{}, unknownWarned: map[catalog.Name]bool{}, oversizeWarned: map[catalog.Name]bool{},
		delivery: newDelivery(tr, log),
		stats:    &stats{}, changes: changes, tables: map[catalog.Name]*tableCounters{},
	}
}

// HandleData publishes what m holds. A message that cannot be parsed stops
// the run; nothing at or after it is flushed.
func (h *changeHandler) HandleData(ctx context.Context, m pglogrepl.XLogData) error {
	h.stats.walBytes.Add(uint64(len(m.WALData)))
	h.delivery.receiving()
	ev, err := h.parser.Parse(m.WALData, m.WALStart)
	if err != nil {
		return err
	}
	switch ev.Kind {
	case decode.KindBegin:
		h.commitLSN, h.commitTime, h.txXID = ev.CommitLSN, ev.CommitTime, ev.XID
	case decode.KindChange:
		return h.change(ctx, ev)
	case decode.KindCommit:
		at := ev.CommitTime
		if at.IsZero() {
			at = h.commitTime
		}
		h.commitLSN, h.commitTime = 0, time.Time{}
		h.commit(m.WALStart, at)
	case decode.KindMessage:
		h.log.Debug("logical message (not published)", "prefix", ev.MessagePrefix, "transactional", ev.MessageTransact, "lsn", m.WALStart)
		if ev.MessageTransact && ev.MessagePrefix == snapshot.Prefix {
			return h.watermark(ctx, ev)
		}
		if !ev.MessageTransact {
			h.idle(m.WALStart)
			if ev.MessagePrefix == slotwatch.HeartbeatPrefix {
				h.delivery.heartbeat(ev.MessageContent)
			}
		}
	case decode.KindStreamStart, decode.KindStreamed, decode.KindStreamCommit, decode.KindStreamAbort:
		return h.streamed(ctx, ev, m)
	}
	return nil
}

// idle offers lsn as a flush position reached with nothing else to send:
// every transaction that commits before it has been handed over, and one
// that commits after it would be sent again after a restart. It is the
// WAL end of a keepalive, or a non-transactional logical message (the
// heartbeat), which arrives even while the server is too busy with other
// databases' WAL to send keepalives.
func (h *changeHandler) idle(lsn pglogrepl.LSN) {
	h.tracker.Idle(lsn)
}

// change publishes a change event: one record, or one per truncated table.
func (h *changeHandler) change(ctx context.Context, ev *decode.Event) error {
	h.stats.xid.Store(ev.XID)
	if ev.CommitLSN == 0 {
		ev.CommitLSN = h.commitLSN
	}
	if ev.CommitTime.IsZero() {
		ev.CommitTime = h.commitTime
	}
	h.touch(ev)
	if ev.Op != decode.Truncate {
		return h.publish(ctx, ev, ev.Table)
	}
	for _, t := range ev.Truncated {
		if err := h.publish(ctx, ev, t); err != nil {
			return err
		}
	}
	return nil
}

// commit ends a transaction at WAL position lsn, committed on the server
// at time at: it is flushed once its records, and all before them, are
// acknowledged. The source asks the tracker for that position when a
// status update is due.
func (h *changeHandler) commit(lsn pglogrepl.LSN, at time.Time) {
	h.tracker.Commit(lsn, at)
	if h.snap != nil {
		h.snap.Commit(h.txXID, lsn)
	}
}

func (h *changeHandler) publish(ctx context.Context, ev *decode.Event, t decode.Table) error {
	counts := h.counters(t)
	counts.Read(ev.Op)
	h.stats.changes.Add(1)
	if !h.filter.Op(ev.Op) || !h.filter.Table(t) || h.isState(t) {
		counts.Filtered(ev.Op)
		return nil
	}
	key, how, err := h.key(ctx, ev, t)
	if err != nil {
		err = fmt.Errorf("key of %s (change at LSN %s): %w", t.Raw, ev.LSN, err)
		if source.Transient(err) {
			// Postgres or the network is down for a moment: reconnect
			// and read the change again, rather than stop.
			return &source.RetryError{Err: err}
		}
		return err
	}
	switch {
	case how == keyless && !h.publishKeyless:
		h.skippedNoKey++
		counts.Skipped(ev.Op, metrics.SkipNoPrimaryKey)
		if h.warnOnce(h.noKeyWarned, t) {
			h.log.Warn("table has no primary key: its changes are not published (add a primary key, or run with --full-change, or -f JSON)", "table", t.Raw)
		}
		return nil
	case how == unknownTable:
		counts.UnknownTable(ev.Op)
		if h.warnOnce(h.unknownWarned, t) {
			h.log.Warn("the catalog has no table of this name any more (renamed or dropped since the change was made): "+
				"its changes are published with the old key they carry, or none (test_decoding names no key; wal2json and pgoutput do)",
				"table", t.Raw, "op", ev.Op, "lsn", ev.LSN)
		}
	}
	stream, err := h.stream(counts)
	if err != nil {
		return err
	}
	h.buf = h.format.Append(h.buf[:0], ev, t, key)
	seq := h.tracker.Record()
	err = h.sink.Put(ctx, sink.Record{Data: h.buf, PartitionKey: h.partition(ev, t, key), Stream: stream, Seq: seq})
	var over *sink.OversizeError
	if errors.As(err, &over) {
		what := fmt.Sprintf("%s change to %s (key %s) at LSN %s", ev.Op, t.Raw, keyText(ev, key), ev.LSN)
		if !h.skipOversize {
			return fmt.Errorf("%s: %w; start with --oversize=skip to skip such changes", what, err)
		}
		h.skippedLarge++
		counts.Skipped(ev.Op, metrics.SkipOversize)
		// Warn once per table; every skip is counted, and logged at debug
		// level, so that a table of large rows cannot flood the log.
		if h.warnOnce(h.oversizeWarned, t) {
			h.log.Warn("skipping a change too large for Kinesis (--oversize=skip); further ones of this table are logged at debug level and counted in pg2kinesis_changes_skipped_total",
				"change", what, "err", err)
		} else {
			h.log.Debug("skipping a change too large for Kinesis (--oversize=skip)", "change", what, "err", err)
		}
		h.tracker.Ack(seq)
		return nil
	}
	if err == nil {
		counts.Published(ev.Op)
		h.stats.published.Add(1)
		h.stats.recordBytes.Add(uint64(len(h.buf)))
	}
	return err
}

// warnOnce reports whether t is not in warned yet, and adds it.
func (h *changeHandler) warnOnce(warned map[catalog.Name]bool, t decode.Table) bool {
	n := catalog.Name{Schema: t.Schema, Table: t.Name}
	if warned[n] {
		return false
	}
	warned[n] = true
	return true
}

// partition is the record's partition key per --partition-key. Kinesis
// takes at most 256 characters, so a longer pk key is replaced by its MD5:
// still the same key for the same row, which is what ordering needs.
func (h *changeHandler) partition(ev *decode.Event, t decode.Table, key []string) string {
	switch h.partitionKey {
	case format.ByTable:
		return t.Schema + "." + t.Name
	case format.ByPK:
		h.keyBuf = append(append(append(h.keyBuf[:0], t.Schema...), '.'), t.Name...)
		h.keyBuf = append(h.keyBuf, ':')
		h.keyBuf = append(h.keyBuf, keyText(ev, key)...)
		if len(h.keyBuf) > 256 {
			sum := md5.Sum(h.keyBuf)
			return hex.EncodeToString(sum[:])
		}
		return string(h.keyBuf)
	case format.ByConst:
		return "pg2kinesis"
	}
	// format.ByXID
	if ev.XID != h.xid || h.xidKey == "" {
		h.xid, h.xidKey = ev.XID, strconv.FormatUint(uint64(ev.XID), 10)
	}
	return h.xidKey
}

// keyText is the key as CSV's pkey field shows it, for logs and the pk
// partition key.
func keyText(ev *decode.Event, key []string) string {
	return format.KeyText(ev, key)
}

// HandleKeepalive offers the server's WAL end to the tracker: with nothing
// in flight it is flushed, so an idle or filtered database does not pin WAL.
func (h *changeHandler) HandleKeepalive(_ context.Context, walEnd pglogrepl.LSN, caughtUp bool) error {
	if caughtUp {
		h.delivery.idle()
	}
	h.idle(walEnd)
	return nil
}

// Drain lets the sink deliver what it holds: the source's last status
// update, after it, reports what that acknowledged.
func (h *changeHandler) Drain(ctx context.Context) error {
	return h.sink.Drain(ctx)
}
