package config

import (
	"os"
	"strings"

	// YAML rather than TOML: it is what Kubernetes ConfigMaps, Helm values
	// and the sample configs of daemons like this one (Litestream) use, and
	// yaml.v3's node API gives the line of every key for error messages.
	"go.yaml.in/yaml/v3"
)

// repeatable is a flag that a config file may give as a list.
type repeatable interface{ isRepeatable() bool }

// notInFile are flags that are not settings.
var notInFile = map[string]string{
	"config":  "a config file cannot name another one",
	"version": "--version is not a setting",
}

// applyFile sets the flags that the YAML mapping in path names, each key a
// long flag name, each value what the flag would be given (a list for a
// repeatable flag). It returns the names it set. Unknown keys are errors:
// a misspelt key silently ignored is a setting silently lost.
func applyFile(path string, ss []spec) (set []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read the config file (--config, %s): %v", EnvName("config"), err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, usagef("config file %s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, usagef("config file %s, line %d: want a mapping of flag names to values, such as pg-slot-name: cdc", path, root.Line)
	}
	byName := map[string]spec{}
	for _, s := range ss {
		byName[s.name] = s
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		fail := func(format string, args ...any) error {
			return usagef("config file %s, line %d: "+format, append([]any{path, k.Line}, args...)...)
		}
		if why, ok := notInFile[name]; ok {
			return nil, fail("key %q: %s", name, why)
		}
		s, ok := byName[name]
		if !ok {
			hint := "the keys are the long flag names, such as pg-slot-name (see --help)"
			if strings.HasPrefix(name, "-") {
				hint = "write the flag name without dashes"
			}
			return nil, fail("unknown key %q: %s", name, hint)
		}
		if line, dup := seen[name]; dup {
			return nil, fail("key %q is already set on line %d", name, line)
		}
		seen[name] = k.Line
		var values []string
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			return nil, fail("key %q has no value", name)
		case v.Kind == yaml.ScalarNode:
			values = []string{v.Value}
		case v.Kind == yaml.SequenceNode && isRepeatable(s):
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fail("key %q: want a list of plain values", name)
				}
				values = append(values, item.Value)
			}
		default:
			return nil, fail("key %q: want a single value", name)
		}
		for _, x := range values {
			if err := s.value.Set(x); err != nil {
				return nil, fail("invalid value %s for %s: %v", quoted(name, x), name, err)
			}
		}
		set = append(set, name)
	}
	return set, nil
}

func isRepeatable(s spec) bool {
	r, ok := s.value.(repeatable)
	return ok && r.isRepeatable()
}
