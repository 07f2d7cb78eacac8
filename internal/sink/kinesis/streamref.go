package kinesis

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// StreamRef names the stream every call addresses. With an ARN, calls
// carry StreamARN alone: AWS resolves a cross-account stream only by ARN,
// and the SDK sends the call to the ARN's account's endpoint. Name is
// always set (the ARN's name part, with one), as what logs, metrics and
// errors show: it is how operators call the stream.
type StreamRef struct {
	Name string
	ARN  string // "": the caller's account, in the client's region
}

// ByName is a stream of the caller's account.
func ByName(name string) StreamRef { return StreamRef{Name: name} }

// NameParam is the StreamName of an input: nil when the ARN addresses the
// stream, so that the two can never disagree.
func (r StreamRef) NameParam() *string {
	if r.ARN != "" {
		return nil
	}
	return aws.String(r.Name)
}

// ARNParam is the StreamARN of an input, nil without an ARN.
func (r StreamRef) ARNParam() *string {
	if r.ARN == "" {
		return nil
	}
	return aws.String(r.ARN)
}

// String is the name, for %q in errors.
func (r StreamRef) String() string { return r.Name }

// LogValue keeps a log's stream attribute the name, in JSON logs too.
func (r StreamRef) LogValue() slog.Value { return slog.StringValue(r.Name) }
