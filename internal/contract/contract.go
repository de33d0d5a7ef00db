// Package contract is the agreement between the operator, which builds a
// function's pod, and the runner inside it: the environment variables, paths,
// Secret keys and limits both sides must agree on. Keeping them in one place
// lets neither side drift from the other or from docs/runtime-contract.md.
package contract

import (
	"fmt"
	"unicode/utf8"
)

// Variables of the Appwrite 1.0 function environment.
const (
	EnvFunctionID   = "APPWRITE_FUNCTION_ID"
	EnvFunctionName = "APPWRITE_FUNCTION_NAME"
	EnvExecutionID  = "APPWRITE_FUNCTION_EXECUTION_ID"
	EnvTrigger      = "APPWRITE_FUNCTION_TRIGGER"
	EnvRuntimeName  = "APPWRITE_FUNCTION_RUNTIME_NAME"
	EnvData         = "APPWRITE_FUNCTION_DATA"
	EnvEvent        = "APPWRITE_FUNCTION_EVENT"
	EnvEventData    = "APPWRITE_FUNCTION_EVENT_DATA"
	EnvUserID       = "APPWRITE_FUNCTION_USER_ID"
	EnvProjectID    = "APPWRITE_FUNCTION_PROJECT_ID"
	EnvJWT          = "APPWRITE_FUNCTION_JWT"
)

// Variables kfn adds: the request details and the runner's settings.
const (
	EnvRequestMethod  = "KFN_REQUEST_METHOD"
	EnvRequestPath    = "KFN_REQUEST_PATH"
	EnvRequestHeaders = "KFN_REQUEST_HEADERS"
	// EnvRequestBodyDir names the directory of a body too large for
	// EnvData, in parts the runner joins in name order.
	EnvRequestBodyDir = "KFN_REQUEST_BODY_DIR"
	// EnvTimeout is the function's timeout in whole seconds.
	EnvTimeout = "KFN_TIMEOUT"
	// EnvFunctionContract selects the Appwrite contract a runtime wrapper
	// speaks to the code: "v2" (Appwrite 1.0) or "v4" (1.4+, the default).
	EnvFunctionContract = "KFN_FUNCTION_CONTRACT"
	// EnvFunctionVariables lists, comma-separated, the names of the
	// function's own variables (the v2 contract's req.variables).
	EnvFunctionVariables = "KFN_FUNCTION_VARIABLES"
	// EnvIODir is the directory of the request and response files.
	EnvIODir                  = "KFN_IO_DIR"
	EnvTerminationMessagePath = "KFN_TERMINATION_MESSAGE_PATH"

	// The runner tells the user's code where the request and response files are.
	EnvRequestFile         = "KFN_REQUEST_FILE"
	EnvResponseFile        = "KFN_RESPONSE_FILE"
	EnvStatusCodeFile      = "KFN_STATUS_CODE_FILE"
	EnvResponseHeadersFile = "KFN_RESPONSE_HEADERS_FILE"
)

// Names of the files in the IO directory.
const (
	RequestFile         = "request"
	ResponseFile        = "response"
	StatusCodeFile      = "status-code"
	ResponseHeadersFile = "response-headers"
)

// Paths inside a function pod. The runner and the IO files share one
// emptyDir at RunnerDir; the code and a large body are mounted beneath it.
const (
	RunnerDir      = "/kfn"
	Runner         = "/kfn/bin/kfn"
	IODir          = "/kfn/io"
	RequestBodyDir = "/kfn/request-body"
	CodeDir        = "/kfn/code"
	// ImageRunnerDir is where the runner image is mounted when it is
	// delivered as an image volume; ImageRunner is the binary in it.
	ImageRunnerDir = "/kfn/image"
	ImageRunner    = "/kfn/image/kfn"
	// InstallDir is where the init container sees the runner's emptyDir,
	// and InstalledRunner where it copies itself, which is Runner in the
	// function container.
	InstallDir      = "/kfn-install"
	InstalledRunner = "/kfn-install/bin/kfn"
	// RunnerImageBinary is the kfn binary in the runner image.
	RunnerImageBinary = "/kfn"
	// HomeDir is the only writable directory besides RunnerDir.
	HomeDir = "/tmp"
	// DefaultTerminationMessagePath is Kubernetes' default.
	DefaultTerminationMessagePath = "/dev/termination-log"
)

// Keys of the Secrets an Execution refers to.
const (
	// JWTSecretKey holds the caller's JWT in the Execution's JWT Secret.
	JWTSecretKey = "jwt"
	// BodySecretKey holds one part of a large body in a body Secret.
	BodySecretKey = "body"
)

// Limits.
const (
	// MaxTerminationMessageBytes is the size limit Kubernetes puts on a
	// container's termination message.
	MaxTerminationMessageBytes = 4096
	// MaxOutputBytes caps each of the response, stdout and stderr the
	// runner reports.
	MaxOutputBytes = 1_000_000
	// Response headers are bounded as Appwrite bounds request headers.
	MaxResponseHeaders          = 100
	MaxResponseHeadersFileBytes = 16384
	// MaxResultLineBytes bounds the runner's result line in the container
	// log, which the operator reads no further than this. The runner cuts
	// its outputs to fit (JSON writes a control character as six bytes): a
	// line longer than the kubelet's container log file (10 MiB by default)
	// would be rotated away before the operator reads it, and the record
	// keeps far less (--max-record-bytes) anyway.
	MaxResultLineBytes = 4 << 20
)

// Names of the outputs, as the runner's Result and an Execution's
// status.truncated list those that were cut.
const (
	OutputResponse = "response"
	OutputStdout   = "stdout"
	OutputStderr   = "stderr"
)

// LogsTruncated and ErrorsTruncated are the markers, worded as Appwrite's,
// put before stdout and stderr that lost their beginning to fit in limit.
func LogsTruncated(limit int) string {
	return fmt.Sprintf("[WARNING] Logs truncated. The output exceeded %d characters.\n", limit)
}

// ErrorsTruncated is LogsTruncated for stderr.
func ErrorsTruncated(limit int) string {
	return fmt.Sprintf("[WARNING] Errors truncated. The output exceeded %d characters.\n", limit)
}

// ValidHeaderName accepts letters, digits and inner hyphens, as Appwrite's
// header validator does.
func ValidHeaderName(name string) bool {
	if name == "" || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for _, r := range name {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// ValidHeaderValue accepts what HTTP allows in a field value: valid UTF-8
// without control characters other than tab, which could otherwise split
// or smuggle headers wherever the value is replayed.
func ValidHeaderValue(value string) bool {
	if !utf8.ValidString(value) {
		return false
	}
	for _, r := range value {
		if r < ' ' && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}
