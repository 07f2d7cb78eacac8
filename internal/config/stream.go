package config

import (
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// validateStream checks the flags that name the stream, its region and
// how --create-stream makes it.
func (c *Config) validateStream(raw rawValues) error {
	if err := oneOf("stream-mode", c.StreamMode, sink.StreamModes); err != nil {
		return err
	}
	if c.ShardCount < 1 {
		return usagef("invalid --shard-count %d: must be at least 1", c.ShardCount)
	}
	c.KinesisRegion = c.AWSRegion
	if c.StreamARN == "" {
		return c.validateRoutes(raw)
	}
	if len(raw.routes) > 0 {
		return usagef("--route cannot be used with --stream-arn, which names one stream: route tables to streams by name")
	}
	name, region, err := StreamByARN(c.StreamARN, raw.explicit["stream-name"], c.AWSRegion)
	if err != nil {
		return err
	}
	// CreateStream takes no ARN: it creates a stream in the caller's
	// account, which need not be the ARN's, and a created stream the
	// calls then could not reach would fail late and leave a stray.
	if c.CreateStream {
		return usagef("--create-stream cannot be used with --stream-arn: a stream is created in the caller's account, which may not be the ARN's; create the stream in its account first, or name it with --stream-name")
	}
	c.StreamName, c.KinesisRegion = name, region
	return nil
}

// The account and region parts of an ARN that Kinesis accepts. The region
// is checked, not just taken: the SDK builds the endpoint's host from it.
var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// partitionRegions are the partitions of a --stream-arn and the prefix of
// their regions ("" for any but the others'): aws-cn's are cn-*, and
// aws-us-gov's us-gov-*.
var partitionRegions = map[string]string{"aws": "", "aws-cn": "cn-", "aws-us-gov": "us-gov-"}

// StreamByARN checks --stream-arn, given with or without an explicit
// --stream-name (nameSet) and --aws-region (region, "" when not given),
// and returns the stream's name and the region of the calls. Shared with
// the tail subcommand.
func StreamByARN(streamARN string, nameSet bool, region string) (name, arnRegion string, err error) {
	if nameSet {
		return "", "", usagef("--stream-arn and --stream-name both name the stream: give one (the ARN holds the name)")
	}
	bad := func(why string, args ...any) error {
		return usagef("invalid --stream-arn %q (%s): "+why+"; want arn:aws:kinesis:REGION:ACCOUNT:stream/NAME",
			append([]any{streamARN, EnvName("stream-arn")}, args...)...)
	}
	a, err := arn.Parse(streamARN)
	if err != nil {
		return "", "", bad("not an ARN")
	}
	prefix, ok := partitionRegions[a.Partition]
	switch {
	case !ok:
		return "", "", bad("partition %q is not aws, aws-cn or aws-us-gov", a.Partition)
	case a.Service != "kinesis":
		return "", "", bad("service %q is not kinesis", a.Service)
	case !regionRE.MatchString(a.Region) || prefix != "" && !strings.HasPrefix(a.Region, prefix) ||
		prefix == "" && (strings.HasPrefix(a.Region, "cn-") || strings.HasPrefix(a.Region, "us-gov-")):
		return "", "", bad("%q is not a region of partition %s", a.Region, a.Partition)
	case !accountRE.MatchString(a.AccountID):
		return "", "", bad("account %q is not 12 digits", a.AccountID)
	}
	name, ok = strings.CutPrefix(a.Resource, "stream/")
	if !ok || !streamNameRE.MatchString(name) {
		return "", "", bad("resource %q is not stream/ and a stream name (1 to 128 letters, digits, underscores, hyphens or periods; a stream's ARN, not a consumer's)", a.Resource)
	}
	if region != "" && region != a.Region {
		return "", "", usagef("--aws-region %s and --stream-arn's region %s disagree: the stream is reached in its own region; drop --aws-region or correct one of them", region, a.Region)
	}
	return name, a.Region, nil
}
