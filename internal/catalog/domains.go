package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Domains maps a domain's type name, as the plugins print it, to the name
// of the built-in type it is over. test_decoding and wal2json name a
// column by its domain and print its value as text, so that JSON would
// write a domain over integer as a string where pgoutput, which names
// the base type, writes a number.
type Domains map[string]string

// DomainLister is a Source that also lists the database's domains; the
// cache loads them with the keys.
type DomainLister interface {
	Domains(ctx context.Context) (Domains, error)
}

// domainsQuery lists every domain outside the system schemas under the
// name format_type gives it (schema-qualified when its schema is not on
// the search path, as a plugin prints it) and under its qualified name,
// with the type it is over: another domain, or a base type.
const domainsQuery = `
SELECT pg_catalog.format_type(t.oid, NULL),
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname),
       pg_catalog.format_type(t.typbasetype, NULL)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`

// Domains reads the domains, each resolved to the built-in type under it.
func (p *PG) Domains(ctx context.Context) (Domains, error) {
	over := Domains{}
	err := p.use(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, domainsQuery)
		if err != nil {
			return fmt.Errorf("query domains: %w", err)
		}
		var name, qualified, base string
		_, err = pgx.ForEachRow(rows, []any{&name, &qualified, &base}, func() error {
			over[name], over[qualified] = base, base
			return nil
		})
		if err != nil {
			return fmt.Errorf("read domains: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resolve(over), nil
}

// resolve follows domains over domains down to the built-in type.
func resolve(over Domains) Domains {
	out := make(Domains, len(over))
	for name, base := range over {
		for range 16 { // a chain of domains, not a loop: Postgres forbids those
			next, ok := over[base]
			if !ok {
				break
			}
			base = next
		}
		out[name] = base
	}
	return out
}

// BaseType is the built-in type under the domain called name, if name is
// a domain.
func (c *Cache) BaseType(name string) (string, bool) {
	d := c.domains.Load()
	if d == nil {
		return "", false
	}
	base, ok := (*d)[name]
	return base, ok
}
