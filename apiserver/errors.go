package apiserver

import (
	"fmt"
	"strconv"

	"github.com/gin-gonic/gin"
)

// Appwrite error types the facade answers with, and their HTTP codes and
// default messages (Appwrite's app/config/errors.php).
const (
	errUnknown            = "general_unknown"
	errRouteNotFound      = "general_route_not_found"
	errArgumentInvalid    = "general_argument_invalid"
	errCursorNotFound     = "general_cursor_not_found"
	errBadRequest         = "general_bad_request"
	errRateLimit          = "general_rate_limit_exceeded"
	errUnauthorizedScope  = "general_unauthorized_scope"
	errUserUnauthorized   = "user_unauthorized"
	errJWTInvalid         = "user_jwt_invalid"
	errProjectUnknown     = "project_unknown"
	errProjectNotFound    = "project_not_found"
	errFunctionNotFound   = "function_not_found"
	errExecutionNotFound  = "execution_not_found"
	errExecutionRunning   = "execution_in_progress"
	errSyncTimeout        = "function_synchronous_timeout"
	errServiceUnavailable = "general_service_disabled"
	errUnknownOrigin      = "general_unknown_origin"
	errServerError        = "general_server_error"
)

var errorTypes = map[string]struct {
	code    int
	message string
}{
	errUnknown:            {500, "An unknown error has occured. Please check the logs for more information."},
	errRouteNotFound:      {404, "The requested route was not found. Please refer to the API docs and try again."},
	errArgumentInvalid:    {400, "The request contains one or more invalid arguments. Please refer to the endpoint documentation."},
	errCursorNotFound:     {400, "The cursor is invalid. This can happen if the item represented by the cursor has been deleted."},
	errBadRequest:         {400, "There was an error processing your request. Please check the inputs and try again."},
	errRateLimit:          {429, "Rate limit for the current endpoint has been exceeded. Please try again after some time."},
	errUnauthorizedScope:  {401, "The current user or API key does not have the required scopes to access the requested resource."},
	errUserUnauthorized:   {401, "The current user is not authorized to perform the requested action."},
	errJWTInvalid:         {401, "The JWT token is invalid. Please check the value of the X-Appwrite-JWT header to ensure the correct token is being used."},
	errProjectUnknown:     {400, "The project ID is either missing or not valid. Please check the value of the X-Appwrite-Project header to ensure the correct project ID is being used."},
	errProjectNotFound:    {404, "Project with the requested ID could not be found. Please check the value of the X-Appwrite-Project header to ensure the correct project ID is being used."},
	errFunctionNotFound:   {404, "Function with the requested ID could not be found."},
	errExecutionNotFound:  {404, "Execution with the requested ID could not be found."},
	errExecutionRunning:   {400, "Can't delete ongoing execution. Please wait for execution to finish before deleting it."},
	errSyncTimeout:        {408, "Synchronous function execution timed out. Use asynchronous execution instead, or ensure the execution duration doesn't exceed 30 seconds."},
	errServiceUnavailable: {503, "The requested service is not ready yet. Please try again in a moment."},
	errUnknownOrigin:      {403, "The request originated from an unknown origin. If you trust this domain, please list it as a trusted platform in the Appwrite console."},
	errServerError:        {500, "An internal server error occurred."},
	errRuntimeUnsupported: {404, "The requested runtime is either inactive or unsupported. Please check the value of the _APP_FUNCTIONS_RUNTIMES environment variable."},
	errDeploymentNotFound: {404, "Deployment not found. Create a deployment before trying to execute a function"},
	errBuildNotReady:      {400, "Build with the requested ID is building and not ready for execution."},
}

// apiError is an error answered to the client in Appwrite's error model.
type apiError struct {
	Type    string
	Code    int
	Message string
	// cause is the unexpected error behind a general_unknown, for the log.
	cause error
	// retryAfter, in seconds, is sent as Retry-After when positive.
	retryAfter int64
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d): %s", e.Type, e.Code, e.Message) }

// newError makes an error of an Appwrite type with its default message.
func newError(typ string) *apiError {
	t, ok := errorTypes[typ]
	if !ok {
		t = errorTypes[errUnknown]
		typ = errUnknown
	}
	return &apiError{Type: typ, Code: t.code, Message: t.message}
}

// newErrorf makes an error of an Appwrite type with a message of its own.
func newErrorf(typ, format string, args ...any) *apiError {
	e := newError(typ)
	e.Message = fmt.Sprintf(format, args...)
	return e
}

// invalidParam is Utopia's message for a parameter its validator rejected.
func invalidParam(name, reason string) *apiError {
	return newErrorf(errArgumentInvalid, "Invalid `%s` param: %s", name, reason)
}

// internalError hides an unexpected error from the client; the request
// log shows it.
func internalError(err error) *apiError {
	e := newError(errUnknown)
	e.cause = err
	return e
}

// abort answers the error in Appwrite's error model and stops the chain.
// Its version is the server's (APP_VERSION_STABLE), whatever the format
// answered: the facade speaks as the newest Appwrite it implements.
func abort(c *gin.Context, err *apiError) {
	if err.cause != nil {
		_ = c.Error(err.cause)
	}
	c.Header("Cache-Control", "no-cache, no-store, must-revalidate")
	c.Header("Expires", "0")
	c.Header("Pragma", "no-cache")
	if err.retryAfter > 0 {
		c.Header("Retry-After", strconv.FormatInt(err.retryAfter, 10))
	}
	c.Set(ctxErrorType, err.Type)
	c.AbortWithStatusJSON(err.Code, gin.H{
		"message": err.Message,
		"code":    err.Code,
		"type":    err.Type,
		"version": latest.String(),
	})
}
