// Package catalogtest gives tests key sources that need no database.
package catalogtest

import (
	"context"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
)

// Loader is a catalog.Source that only loads: its version never changes,
// so a cache over it reloads only on schedule, on SIGHUP and for a table
// it does not know.
type Loader func(ctx context.Context) (catalog.Keys, error)

func (l Loader) Load(ctx context.Context) (catalog.Keys, error) { return l(ctx) }
func (Loader) Version(context.Context) (string, error)          { return "", nil }

// Fixed is a catalog.Source of keys that never change.
func Fixed(keys catalog.Keys) catalog.Source {
	return Loader(func(context.Context) (catalog.Keys, error) { return keys, nil })
}
