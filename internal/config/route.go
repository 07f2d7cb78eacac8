package config

import (
	"strings"

	"github.com/pg2kinesis/pg2kinesis/internal/route"
)

// validateRoutes checks --stream-name, a stream or a template with
// {schema} and {table}, and the --route rules, into Config.Router: nil
// when every table goes to the one stream --stream-name names.
func (c *Config) validateRoutes(raw rawValues) error {
	if len(raw.routes) == 0 && !strings.Contains(c.StreamName, "{") {
		return CheckStreamName(c.StreamName)
	}
	r, err := route.New(c.StreamName, raw.routes)
	if err != nil {
		return usagef("invalid %v", err)
	}
	c.Router = r
	return nil
}
