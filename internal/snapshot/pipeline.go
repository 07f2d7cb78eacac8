package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// statement is one statement of a round trip, with text parameters and
// results.
type statement struct {
	sql  string
	args [][]byte
	oids []uint32
	// rows reads the statement's rows (nil: none wanted). An error it
	// returns is the round trip's; the statements after it still run.
	rows func(rr *pgconn.ResultReader) error
}

// roundTrip runs groups of statements in one round trip to the server (a
// pipeline), each group its own implicit transaction, committed before
// the next group starts, and returns each group's error. A chunk's read
// and watermarks are seven statements: each in a round trip of its own,
// their waits, not the server's work, were several percent of a
// snapshot's time over loopback, and would be most of it over a network.
// An error fails the rest of its group, not the groups after it, unless
// the connection is lost, or the group left a transaction block open
// (its BEGIN run, its COMMIT skipped after the error): the groups after
// it then fail too, so a group with a BEGIN goes last. That block is
// rolled back.
func roundTrip(ctx context.Context, pc *pgconn.PgConn, groups ...[]statement) []error {
	errs := make([]error, len(groups))
	fail := func(from int, err error) []error {
		for i := from; i < len(errs); i++ {
			errs[i] = cmp.Or(errs[i], err)
		}
		return errs
	}
	p := pc.StartPipeline(ctx)
	for _, g := range groups {
		for _, s := range g {
			p.SendQueryParams(s.sql, s.args, s.oids, nil, nil)
		}
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		_ = p.Close()
		return fail(0, err)
	}
	for i, g := range groups {
		errs[i] = runGroup(p, g)
		if broken(errs[i]) {
			_ = p.Close() // nothing more comes
			return fail(i, errs[i])
		}
	}
	if err := p.Close(); err != nil {
		return fail(len(errs)-1, err)
	}
	if pc.TxStatus() != 'I' {
		if err := pc.Exec(context.WithoutCancel(ctx), "ROLLBACK").Close(); err != nil {
			return fail(len(errs)-1, fmt.Errorf("roll back: %w", err))
		}
	}
	return errs
}

// scanText is a rows func that reads a statement's one text value.
func scanText(v *string) func(rr *pgconn.ResultReader) error {
	return func(rr *pgconn.ResultReader) error {
		if !rr.NextRow() || len(rr.Values()) == 0 {
			return errors.New("no value")
		}
		*v = string(rr.Values()[0])
		return nil
	}
}

// runGroup reads the results of one group and its Sync. After a server
// error the server skips the group's other statements, and so does the
// pipeline's reader: the Sync comes next.
func runGroup(p *pgconn.Pipeline, g []statement) error {
	var first error
	for _, s := range g {
		res, err := p.GetResults()
		if err != nil {
			first = err
			break
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			return fmt.Errorf("pipeline: %T where the result of %q was due", res, s.sql)
		}
		var rowsErr error
		if s.rows != nil {
			if err := s.rows(rr); err != nil {
				rowsErr = clientError{err}
			}
		}
		if _, err := rr.Close(); err != nil {
			first = cmp.Or(first, err)
			break
		}
		first = cmp.Or(first, rowsErr)
	}
	if broken(first) {
		return first
	}
	for {
		res, err := p.GetResults()
		if err != nil {
			if broken(err) {
				return err
			}
			first = cmp.Or(first, err) // the implicit commit's: the Sync is still due
			continue
		}
		if _, ok := res.(*pgconn.PipelineSync); ok {
			return first
		}
		return fmt.Errorf("pipeline: %T where a Sync was due", res)
	}
}

// clientError is an error of a statement's rows func: the server is fine.
type clientError struct{ error }

func (e clientError) Unwrap() error { return e.error }

// broken reports whether err leaves the pipeline unusable: neither the
// server's answer to a statement nor a rows func's.
func broken(err error) bool {
	var (
		pgErr  *pgconn.PgError
		client clientError
	)
	return err != nil && !errors.As(err, &pgErr) && !errors.As(err, &client)
}
