package kinesis

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func httpError(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want errorClass
	}{
		{"throughput exceeded", &types.ProvisionedThroughputExceededException{}, classThrottle},
		{"KMS throttling", &types.KMSThrottlingException{}, classThrottle},
		{"limit exceeded", &types.LimitExceededException{}, classThrottle},
		{"stream missing", &types.ResourceNotFoundException{}, classFatal},
		{"stream updating", &types.ResourceInUseException{}, classRetry},
		{"invalid argument", &types.InvalidArgumentException{}, classFatal},
		{"access denied", &types.AccessDeniedException{}, classFatal},
		{"KMS disabled", &smithy.GenericAPIError{Code: "KMSDisabledException"}, classFatal},
		{"bad signature", &smithy.GenericAPIError{Code: "InvalidSignatureException"}, classFatal},
		{"other 4xx", httpError(400, &smithy.GenericAPIError{Code: "SomethingNew"}), classFatal},
		{"5xx", httpError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}), classRetry},
		{"internal failure", &smithy.GenericAPIError{Code: "InternalFailure"}, classRetry},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, classRetry},
		{"connection cut", io.ErrUnexpectedEOF, classRetry},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
	if recordErrorClass("ProvisionedThroughputExceededException") != classThrottle || recordErrorClass("InternalFailure") != classRetry {
		t.Error("per-record error codes misclassified")
	}
}
