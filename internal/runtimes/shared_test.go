package runtimes_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// The cases every wrapper passes alike: the same requests and the same
// checks, with the function's code in the wrapper's language. Each
// runtime's tests run them next to its own cases (node_test.go,
// python_test.go).

func TestNodeV4(t *testing.T) {
	runCases(t, "node-20", append(sharedV4Cases(nodeCode), nodeV4...))
}

func TestNodeV2(t *testing.T) {
	runCases(t, "node-20", append(sharedV2Cases(nodeCode), nodeV2...))
}

func TestPythonV4(t *testing.T) {
	runCases(t, "python-3.11", append(sharedV4Cases(pythonCode), pythonV4...))
}

func TestPythonV2(t *testing.T) {
	runCases(t, "python-3.11", append(sharedV2Cases(pythonCode), pythonV2...))
}

// wrapperCode is a language's functions for the shared cases.
type wrapperCode struct {
	main       string // the v4 cases' entrypoint: main.js, main.py
	entrypoint string // the runtime's default entrypoint, where the v2 cases put their code

	// echo answers 201 with JSON of the request's fields (isBinary: the
	// binary body is the language's bytes type), the GREETING variable and
	// the function's ID, and sets the headers X-Custom, X-Multi (with
	// control characters), x-open-runtimes-secret and "bad name".
	echo string
	// text answers "<req.body> <req.url> <req.port>" as text.
	text string
	// helpers answers /empty, /redirect to https://kfn.dev/docs, /binary
	// ("hi", 200, application/octet-stream) and /text ("<b>héllo</b>", 202,
	// text/html) with res's helpers, and /send ("sent", 203) with res.send.
	helpers string
	// noReturn logs "did work" and returns nothing.
	noReturn string
	// named sends its file name without the extension.
	named string
	// syntaxError is code with a syntax error.
	syntaxError string
	// largeBody answers JSON {n: the length of the body, last: its last
	// character}.
	largeBody string

	// echoV2 answers 201 with JSON of req.payload, the GREETING and OTHER
	// variables, APPWRITE_FUNCTION_ID, _DATA and _TRIGGER in req.variables,
	// whether req.variables holds PATH or a KFN_ variable, whether req.env
	// is req.variables, req.headers, and GREETING in the process's
	// environment.
	echoV2 string
	// sendV2 calls res.send('created', 202).
	sendV2 string
	// noAnswerV2 prints "forgot to answer" and does not answer.
	noAnswerV2 string

	// The v4 failures, each with what the language says of it.
	notResponse       failure // returns a string
	missingDependency failure // imports a package that is not installed
	noFunction        failure // has no function to run
	timeout           failure // logs "before" and never ends
}

// failure is code that fails, and the checks of what the language says of
// it, besides the shared checks.
type failure struct {
	code   string
	checks []check
}

// code is a code directory holding one file.
func code(name, content string) map[string]string { return map[string]string{name: content} }

// with is files and more in one code directory.
func with(files map[string]string, more map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

var textPlain = map[string]string{"content-type": "text/plain; charset=utf-8"}

// sharedV4Cases are the v4 cases with c's code.
func sharedV4Cases(c wrapperCode) []testCase {
	ext := filepath.Ext(c.main)
	helper := func(path string) execution {
		return execution{entry: c.main, files: code(c.main, c.helpers), path: path}
	}
	return []testCase{{
		name: "request fields, JSON response, status and headers (v4 is the default)",
		exec: execution{
			entry: c.main, files: code(c.main, c.echo),
			data: `{"name":"kfn"}`, method: "GET", path: "/items/1?a=1&b=x%20y&c=d=e&flag",
			headers: map[string]string{"Content-Type": "application/json", "Host": "example.com:8080",
				"X-Forwarded-Proto": "https", "x-open-runtimes-secret": "hidden"},
			env: map[string]string{"GREETING": "hello"},
		},
		checks: []check{ok(201), headers(map[string]string{"content-type": "application/json; charset=utf-8", "x-custom": "yes", "x-multi": "a b c\td"}),
			stderr("kfn: response header \"bad name\" left out: a name holds letters, digits and inner hyphens.\n"),
			responseJSON(map[string]any{
				"body": map[string]any{"name": "kfn"}, "bodyText": `{"name":"kfn"}`, "bodyRaw": `{"name":"kfn"}`,
				"bodyJson": map[string]any{"name": "kfn"}, "binaryLength": 14, "isBinary": true,
				"method": "GET", "path": "/items/1", "queryString": "a=1&b=x%20y&c=d=e&flag",
				"query": map[string]any{"a": "1", "b": "x%20y", "c": "d=e", "flag": ""},
				"host":  "example.com", "port": 8080, "scheme": "https", "url": "https://example.com:8080/items/1?a=1&b=x%20y&c=d=e&flag",
				"headers": map[string]any{"content-type": "application/json", "host": "example.com:8080", "x-forwarded-proto": "https",
					"x-appwrite-trigger": "http", "x-appwrite-user-id": "", "x-appwrite-user-jwt": "", "x-appwrite-execution-id": "hello-1"},
				"greeting": "hello", "functionId": "hello",
			})},
	}, {
		name:   "text body without a content type (a blank contract is v4)",
		exec:   execution{contract: " ", entry: c.main, data: "plain words", files: code(c.main, c.text)},
		checks: []check{ok(200), response("plain words http://localhost/ 80"), headers(textPlain), stdout(""), stderr("")},
	}, {
		name:   "res.empty",
		exec:   helper("/empty"),
		checks: []check{ok(204), response(""), headers(textPlain)},
	}, {
		name:   "res.redirect",
		exec:   helper("/redirect"),
		checks: []check{ok(301), headers(with(textPlain, map[string]string{"location": "https://kfn.dev/docs"}))},
	}, {
		name:   "res.binary",
		exec:   helper("/binary"),
		checks: []check{ok(200), response("hi"), headers(map[string]string{"content-type": "application/octet-stream; charset=utf-8"})},
	}, {
		name:   "res.text",
		exec:   helper("/text"),
		checks: []check{ok(202), response("<b>héllo</b>"), headers(map[string]string{"content-type": "text/html; charset=utf-8"})},
	}, {
		name:   "a missing return fails",
		exec:   execution{entry: c.main, files: code(c.main, c.noReturn)},
		checks: []check{failed(), stdout("did work\n"), stderr("Return statement missing. return context.res.empty() if no response is expected.\n")},
	}, {
		name:   "a missing entrypoint fails",
		exec:   execution{entry: "nope" + ext, files: code(c.main, "")},
		checks: []check{failed(), stderr("Failed to load entrypoint, file nope" + ext + " does not exist.\n")},
	}, {
		name:   "no entrypoint means " + c.entrypoint,
		exec:   execution{files: code(c.entrypoint, c.named)},
		checks: []check{ok(200), response(strings.TrimSuffix(c.entrypoint, ext))},
	}, {
		name:   "a syntax error fails",
		exec:   execution{entry: c.main, files: code(c.main, c.syntaxError)},
		checks: []check{failed(), stderrHas("SyntaxError")},
	}, {
		name:   "an unknown contract fails",
		exec:   execution{contract: "v9", entry: c.main, files: code(c.main, c.echo)},
		checks: []check{failed(), stderr("kfn: unknown KFN_FUNCTION_CONTRACT \"v9\": want v2 or v4.\n")},
	}, {
		name:   "a value that is not a response fails",
		exec:   execution{entry: c.main, files: code(c.main, c.notResponse.code)},
		checks: append([]check{failed()}, c.notResponse.checks...),
	}, {
		name:   "a missing dependency fails",
		exec:   execution{entry: c.main, files: code(c.main, c.missingDependency.code)},
		checks: append([]check{failed()}, c.missingDependency.checks...),
	}, {
		name:   "code without a function to run fails",
		exec:   execution{entry: c.main, files: code(c.main, c.noFunction.code)},
		checks: append([]check{failed()}, c.noFunction.checks...),
	}, {
		name:   "a timeout keeps the logs written before it",
		exec:   execution{entry: c.main, timeout: 1, files: code(c.main, c.timeout.code)},
		checks: append([]check{timedOut(), status(500), stderrHas("Execution timed out after 1s.")}, c.timeout.checks...),
	}, {
		name:   "a large body from KFN_REQUEST_BODY_DIR",
		exec:   execution{entry: c.main, bodyParts: []string{strings.Repeat("a", 70000), strings.Repeat("b", 70000)}, files: code(c.main, c.largeBody)},
		checks: []check{ok(200), responseJSON(map[string]any{"n": 140000, "last": "b"})},
	}}
}

// sharedV2Cases are the v2 cases with c's code.
func sharedV2Cases(c wrapperCode) []testCase {
	v2 := func(content string) execution {
		return execution{contract: "v2", entry: c.entrypoint, files: code(c.entrypoint, content)}
	}
	payload := v2(c.echoV2)
	payload.data, payload.headers = `{"name":"kfn"}`, map[string]string{"X-Trace": "abc"}
	payload.env = map[string]string{"GREETING": "hello", "OTHER": "not the function's", "KFN_FUNCTION_VARIABLES": "GREETING"}
	everyVariable := v2(c.echoV2)
	everyVariable.data, everyVariable.env = "x", map[string]string{"GREETING": "hello", "OTHER": "mine too"}
	largeBody := v2(c.echoV2)
	largeBody.bodyParts = []string{"big ", "body"}
	return []testCase{{
		name: "payload, variables and headers; res.json with a status",
		exec: payload,
		checks: []check{ok(201), headers(nil), stdout(""), stderr(""), responseJSON(map[string]any{
			"payload": `{"name":"kfn"}`, "greeting": "hello", "other": nil, "functionId": "hello", "data": `{"name":"kfn"}`,
			"trigger": "http", "hasPath": false, "hasKfn": false, "envIsVariables": true,
			"headers": map[string]any{"x-trace": "abc"}, "processEnv": "hello",
		})},
	}, {
		name:   "without KFN_FUNCTION_VARIABLES every non-system variable is the function's",
		exec:   everyVariable,
		checks: []check{ok(201), responseJSON(map[string]any{"greeting": "hello", "other": "mine too", "hasPath": false, "hasKfn": false})},
	}, {
		name:   "a large body is the payload and APPWRITE_FUNCTION_DATA",
		exec:   largeBody,
		checks: []check{ok(201), responseJSON(map[string]any{"payload": "big body", "data": "big body"})},
	}, {
		name:   "res.send with a status",
		exec:   v2(c.sendV2),
		checks: []check{ok(202), response("created"), headers(nil)},
	}, {
		name:   "no answer fails",
		exec:   v2(c.noAnswerV2),
		checks: []check{failed(), stdout("forgot to answer\n"), stderr("Response missing: the function ended without calling res.send() or res.json().\n")},
	}}
}
