package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const (
	kinesisSDK = "github.com/aws/aws-sdk-go-v2/service/kinesis"
	rdsAuthSDK = "github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	sinkDir    = "../../internal/sink/kinesis"
)

type iamPolicy struct {
	Version   string
	Statement []struct {
		Sid      string
		Effect   string
		Action   []string
		Resource string
	}
}

// readPolicy decodes an IAM policy, refusing fields the checks do not know
// (a Condition or a NotAction would change what they mean), and checks
// what every statement of the examples shares. It returns each
// statement's actions by Sid.
func readPolicy(t *testing.T, name string, resource *regexp.Regexp) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(etcDir, "iam", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var p iamPolicy
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("%s: Version %q, want 2012-10-17 (the older one lacks policy variables)", name, p.Version)
	}
	bySid := map[string][]string{}
	sid := regexp.MustCompile(`^[A-Za-z0-9]+$`) // IAM's rule for a Sid
	for _, s := range p.Statement {
		if !sid.MatchString(s.Sid) || bySid[s.Sid] != nil {
			t.Errorf("%s: Sid %q is not alphanumeric, or repeated", name, s.Sid)
		}
		if s.Effect != "Allow" || len(s.Action) == 0 || !resource.MatchString(s.Resource) {
			t.Errorf("%s: %s: want Allow of actions on %s, have %s on %q", name, s.Sid, resource, s.Effect, s.Resource)
		}
		bySid[s.Sid] = slices.Sorted(slices.Values(s.Action))
	}
	return bySid
}

// goFiles parses the Go files of the module that are part of the program:
// not tests, and not internal/testenv, which deletes and reshards streams
// for the tests only.
func goFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	files := map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, top := range []string{"../../cmd", "../../internal"} {
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && d.Name() == "testenv":
				return filepath.SkipDir
			case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go"):
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			files[path] = f
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// importName is the name file f gives the package at path, or "".
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return filepath.Base(path)
		}
	}
	return ""
}

// kinesisOperations are the Kinesis API operations the program can call:
// each call takes its *kinesis.<Operation>Input, so every mention of an
// input type is one, whichever client or interface makes the call.
func kinesisOperations(t *testing.T) []string {
	t.Helper()
	ops := map[string]bool{}
	for _, f := range goFiles(t) {
		name := importName(f, kinesisSDK)
		if name == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == name && strings.HasSuffix(sel.Sel.Name, "Input") && sel.Sel.Name != "Input" {
					ops[strings.TrimSuffix(sel.Sel.Name, "Input")] = true
				}
			}
			return true
		})
	}
	return slices.Sorted(maps.Keys(ops))
}

// interfaceMethods are the methods of the named interface of the sink.
func interfaceMethods(t *testing.T, iface string) []string {
	t.Helper()
	var methods []string
	for path, f := range goFiles(t) {
		if filepath.Dir(path) != filepath.Clean(sinkDir) {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == iface {
				if it, ok := ts.Type.(*ast.InterfaceType); ok {
					for _, m := range it.Methods.List {
						for _, id := range m.Names {
							methods = append(methods, id.Name)
						}
					}
				}
			}
			return true
		})
	}
	if len(methods) == 0 {
		t.Fatalf("no interface %s with methods in %s", iface, sinkDir)
	}
	sort.Strings(methods)
	return methods
}

func prefixed(prefix string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, prefix+n)
	}
	sort.Strings(out)
	return out
}

// The Kinesis policy grants exactly the operations the code calls, each
// in the statement of the part of the program that calls it, so that it
// cannot drift from the code: a new call fails this test until granted.
func TestEtcIAMKinesisPolicy(t *testing.T) {
	bySid := readPolicy(t, "pg2kinesis-kinesis-policy.json", regexp.MustCompile(`^arn:aws:kinesis:REGION:ACCOUNT:stream/STREAM$`))
	granted := map[string]bool{}
	for _, actions := range bySid {
		for _, a := range actions {
			granted[a] = true
		}
	}
	if got, want := slices.Sorted(maps.Keys(granted)), prefixed("kinesis:", kinesisOperations(t)); !slices.Equal(got, want) {
		t.Errorf("the policy grants %q; the code calls %q", got, want)
	}

	// The daemon's calls are the sink's API interface; CreateStream, one
	// of them, only with --create-stream; tail's are its ReadAPI.
	api := interfaceMethods(t, "API")
	if !slices.Contains(api, "CreateStream") {
		t.Fatal("the sink no longer creates streams: drop the CreateStream statement")
	}
	daemon := slices.DeleteFunc(slices.Clone(api), func(m string) bool { return m == "CreateStream" })
	for sid, want := range map[string][]string{
		"PublishChanges":                       prefixed("kinesis:", daemon),
		"CreateStreamOnlyWithCreateStreamFlag": {"kinesis:CreateStream"},
		"TailSubcommandOnlyReadsTheStreamBack": prefixed("kinesis:", interfaceMethods(t, "ReadAPI")),
	} {
		if !slices.Equal(bySid[sid], want) {
			t.Errorf("statement %s grants %q, want %q", sid, bySid[sid], want)
		}
	}
	if len(bySid) != 3 {
		t.Errorf("statements %v: want the three above", slices.Sorted(maps.Keys(bySid)))
	}
	settings(t, []string{"--create-stream"}, nil) // the flag the Sid names
}

// Kinesis server-side encryption with a customer-managed key: producers
// need kms:GenerateDataKey, consumers kms:Decrypt, on the key.
func TestEtcIAMKMSPolicy(t *testing.T) {
	bySid := readPolicy(t, "pg2kinesis-kms-policy.json", regexp.MustCompile(`^arn:aws:kms:REGION:ACCOUNT:key/KEY-ID$`))
	want := map[string][]string{
		"PublishOnlyIfTheStreamUsesACustomerManagedKmsKey": {"kms:GenerateDataKey"},
		"TailOnlyIfTheStreamUsesACustomerManagedKmsKey":    {"kms:Decrypt"},
	}
	if len(bySid) != len(want) {
		t.Errorf("statements %v, want %v", bySid, want)
	}
	for sid, actions := range want {
		if !slices.Equal(bySid[sid], actions) {
			t.Errorf("statement %s grants %q, want %q", sid, bySid[sid], actions)
		}
	}
}

// rds-db:connect is what an IAM token made by --pg-iam-auth (the SDK's
// auth.BuildAuthToken) is checked against.
func TestEtcIAMRDSPolicy(t *testing.T) {
	bySid := readPolicy(t, "pg2kinesis-rds-iam-auth-policy.json",
		regexp.MustCompile(`^arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI-RESOURCE-ID/DBUSER$`))
	if len(bySid) != 1 || !slices.Equal(bySid["ConnectOnlyWithPgIamAuthFlag"], []string{"rds-db:connect"}) {
		t.Errorf("statements %v: want ConnectOnlyWithPgIamAuthFlag granting rds-db:connect", bySid)
	}
	uses := false
	for _, f := range goFiles(t) {
		uses = uses || importName(f, rdsAuthSDK) != ""
	}
	if !uses {
		t.Error("no code makes RDS IAM tokens any more: drop the policy")
	}
	settings(t, []string{"--pg-iam-auth"}, nil)
}
