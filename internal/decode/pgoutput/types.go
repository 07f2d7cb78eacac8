package pgoutput

import (
	"strconv"
	"strings"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// builtin names the built-in types as format_type prints them, and says
// how JSON carries their values. pgoutput sends a Type message only for
// types outside pg_catalog, so the built-in ones must be known here.
var builtin = map[uint32]struct {
	name string
	kind decode.ValueKind
}{
	16: {"boolean", decode.Bool}, 17: {"bytea", decode.String}, 18: {`"char"`, decode.String},
	19: {"name", decode.String}, 20: {"bigint", decode.Number}, 21: {"smallint", decode.Number},
	23: {"integer", decode.Number}, 25: {"text", decode.String}, 26: {"oid", decode.Number},
	28: {"xid", decode.String}, 114: {"json", decode.String}, 142: {"xml", decode.String},
	600: {"point", decode.String}, 650: {"cidr", decode.String}, 700: {"real", decode.Number},
	701: {"double precision", decode.Number}, 790: {"money", decode.String},
	829: {"macaddr", decode.String}, 869: {"inet", decode.String},
	1042: {"character", decode.String}, 1043: {"character varying", decode.String},
	1082: {"date", decode.String}, 1083: {"time without time zone", decode.String},
	1114: {"timestamp without time zone", decode.String}, 1184: {"timestamp with time zone", decode.String},
	1186: {"interval", decode.String}, 1266: {"time with time zone", decode.String},
	1560: {"bit", decode.String}, 1562: {"bit varying", decode.String},
	1700: {"numeric", decode.Number}, 2950: {"uuid", decode.String}, 3614: {"tsvector", decode.String},
	3802: {"jsonb", decode.String}, 4072: {"jsonpath", decode.String},
	3904: {"int4range", decode.String}, 3926: {"int8range", decode.String},
	3910: {"tstzrange", decode.String}, 3912: {"daterange", decode.String},
	// Arrays are strings: their text form is not JSON.
	1000: {"boolean[]", decode.String}, 1001: {"bytea[]", decode.String},
	1005: {"smallint[]", decode.String}, 1007: {"integer[]", decode.String},
	1009: {"text[]", decode.String}, 1014: {"character[]", decode.String},
	1015: {"character varying[]", decode.String}, 1016: {"bigint[]", decode.String},
	1021: {"real[]", decode.String}, 1022: {"double precision[]", decode.String},
	1028: {"oid[]", decode.String}, 1115: {"timestamp without time zone[]", decode.String},
	1182: {"date[]", decode.String}, 1183: {"time without time zone[]", decode.String},
	1185: {"timestamp with time zone[]", decode.String}, 1187: {"interval[]", decode.String},
	1231: {"numeric[]", decode.String}, 2951: {"uuid[]", decode.String},
	199: {"json[]", decode.String}, 3807: {"jsonb[]", decode.String},
}

// typeName is the column type as format_type prints it with its typmod
// (as wal2json does: "character varying(32)", "numeric(12,2)"). Types the
// server described in a Type message go by that name; others by OID.
func typeName(oid uint32, typmod int32, types map[uint32]described) string {
	b, ok := builtin[oid]
	if !ok {
		if d, ok := types[oid]; ok {
			return d.name
		}
		return "oid " + strconv.FormatUint(uint64(oid), 10)
	}
	if typmod < 0 {
		return b.name
	}
	switch oid {
	case 1042, 1043, 1560, 1562: // character, character varying, bit, bit varying
		n := typmod
		if oid == 1042 || oid == 1043 {
			n -= 4 // VARHDRSZ
		}
		return b.name + "(" + strconv.Itoa(int(n)) + ")"
	case 1700:
		m := typmod - 4
		return "numeric(" + strconv.Itoa(int(m>>16&0xffff)) + "," + strconv.Itoa(int(m&0xffff)) + ")"
	case 1083, 1114, 1184, 1266: // time and timestamp, with or without zone
		base, rest, _ := strings.Cut(b.name, " ")
		return base + "(" + strconv.Itoa(int(typmod)) + ") " + rest
	}
	return b.name
}

// valueKind is how JSON carries a value of the type. A float or numeric
// NaN or infinity is not a JSON number, so it stays a string.
func valueKind(oid uint32, text []byte) decode.ValueKind {
	k := builtin[oid].kind
	if k == decode.Number && len(text) > 0 {
		switch c := text[len(text)-1]; c {
		case 'N', 'y': // NaN, Infinity, -Infinity
			return decode.String
		}
	}
	return k
}

// described is a type from a Type message.
type described struct {
	name string
	base uint32 // the built-in type it stands for, 0 if none
}

// builtinByName finds the built-in types by their internal names, which
// Type messages use: for a domain over a built-in type the server names
// the base type ("pg_catalog.int4"), and its values are that type's.
var builtinByName = map[string]uint32{
	"bool": 16, "bytea": 17, "char": 18, "name": 19, "int8": 20, "int2": 21, "int4": 23, "text": 25,
	"oid": 26, "xid": 28, "json": 114, "xml": 142, "point": 600, "cidr": 650, "float4": 700,
	"float8": 701, "money": 790, "macaddr": 829, "inet": 869, "bpchar": 1042, "varchar": 1043,
	"date": 1082, "time": 1083, "timestamp": 1114, "timestamptz": 1184, "interval": 1186,
	"timetz": 1266, "bit": 1560, "varbit": 1562, "numeric": 1700, "uuid": 2950, "tsvector": 3614,
	"jsonb": 3802, "jsonpath": 4072, "int4range": 3904, "int8range": 3926, "tstzrange": 3910, "daterange": 3912,
}

// describe is a Type message's type as format_type would print it:
// qualified outside public and pg_catalog, arrays ("_mood") as "mood[]";
// a built-in type by its SQL name. The server sends pg_catalog as "".
func describe(namespace, name string) described {
	if namespace == "pg_catalog" || namespace == "" {
		if oid, ok := builtinByName[name]; ok {
			return described{name: builtin[oid].name, base: oid}
		}
	}
	suffix := ""
	if strings.HasPrefix(name, "_") {
		name, suffix = name[1:], "[]"
	}
	if namespace != "public" && namespace != "pg_catalog" && namespace != "" {
		name = namespace + "." + name
	}
	return described{name: name + suffix}
}
