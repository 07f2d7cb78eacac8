package kinesis

import (
	"errors"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// errorClass says what the sink does after a failed call or record.
type errorClass int

const (
	classRetry    errorClass = iota // network, 5xx: back off and retry
	classThrottle                   // throughput exceeded: back off and retry
	classFatal                      // stream missing, access denied, invalid request: stop
)

// throttleCodes are the per-record and per-call error codes that mean
// "slow down"; InternalFailure is a transient server error.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"KMSThrottlingException":                 true,
	"LimitExceededException":                 true,
	"ThrottlingException":                    true,
}

func recordErrorClass(code string) errorClass {
	if throttleCodes[code] {
		return classThrottle
	}
	return classRetry // InternalFailure and anything Kinesis may add later
}

// classify decides whether a failed PutRecords call is worth retrying.
// Anything that is not clearly the caller's fault is retried: the sink
// never gives up silently, and a fatal error stops the daemon without
// checkpointing past what was acknowledged.
func classify(err error) errorClass {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if throttleCodes[apiErr.ErrorCode()] {
			return classThrottle
		}
		// The stream is being resharded or updated (ListShards and
		// DescribeStreamSummary may say so while a split or merge runs):
		// it passes, as a throttle does.
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) {
			return classRetry
		}
		var nf *types.ResourceNotFoundException
		var ia *types.InvalidArgumentException
		var ad *types.AccessDeniedException
		if errors.As(err, &nf) || errors.As(err, &ia) || errors.As(err, &ad) {
			return classFatal
		}
		switch apiErr.ErrorCode() {
		case "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException",
			"KMSOptInRequired", "KMSAccessDeniedException", "ValidationException",
			"UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException",
			"SerializationException", "IncompleteSignature", "AccessDeniedException":
			return classFatal
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 {
			return classFatal
		}
		return classRetry
	}
	return classRetry // network errors, timeouts, cut connections
}
