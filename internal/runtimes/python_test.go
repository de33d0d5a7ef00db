package runtimes_test

import (
	"strings"
	"testing"
)

// A local package next to the entrypoint, and one vendored in a runtime-env
// virtualenv, where Appwrite's Python build installs requirements.txt.
var pythonPackages = map[string]string{
	"mylib/__init__.py": "from .text import shout\n",
	"mylib/text.py":     "def shout(s):\n    return s.upper() + '!'\n",
	"helpers.py":        "PREFIX = 'helped: '\n",
	"runtime-env/lib/python3.11/site-packages/vendored/__init__.py": "def greet(name):\n    return 'Hello, %s!' % name\n",
}

const pythonEchoV4 = `import os

def main(context):
    req = context.req
    return context.res.json({
        'body': req.body, 'bodyText': req.body_text, 'bodyRaw': req.body_raw, 'bodyJson': req.body_json,
        'binaryLength': len(req.body_binary), 'isBytes': isinstance(req.body_binary, bytes),
        'method': req.method, 'path': req.path, 'query': req.query, 'queryString': req.query_string,
        'host': req.host, 'port': req.port, 'scheme': req.scheme, 'url': req.url, 'headers': req.headers,
        'greeting': os.environ.get('GREETING'), 'functionId': os.environ['APPWRITE_FUNCTION_ID'],
    }, 201, {'X-Custom': 'yes', 'X-Multi': 'a\r\nb\x01c\td', 'x-open-runtimes-secret': 'dropped', 'bad name': 'dropped'})
`

func TestPythonV4(t *testing.T) {
	helpers := map[string]string{"main.py": `def main(context):
    req, res = context.req, context.res
    if req.path == '/empty':
        return res.empty()
    if req.path == '/redirect':
        return res.redirect('https://kfn.dev/docs')
    if req.path == '/binary':
        return res.binary(b'hi', 200, {'content-type': 'application/octet-stream'})
    if req.path == '/text':
        return res.text('<b>héllo</b>', 202, {'Content-Type': 'text/html'})
    if req.path == '/send':
        return res.send('sent', statusCode=203)
`}
	cases := []testCase{{
		name: "request fields, JSON response, status and headers (v4 is the default)",
		exec: execution{
			entry: "main.py", files: map[string]string{"main.py": pythonEchoV4},
			data: `{"name":"kfn"}`, method: "GET", path: "/items/1?a=1&b=x%20y&c=d=e&flag",
			headers: map[string]string{"Content-Type": "application/json", "Host": "example.com:8080",
				"X-Forwarded-Proto": "https", "x-open-runtimes-secret": "hidden"},
			env: map[string]string{"GREETING": "hello"},
		},
		checks: []check{ok(201), headers(map[string]string{"content-type": "application/json; charset=utf-8", "x-custom": "yes", "x-multi": "a b c\td"}),
			stderr("kfn: response header \"bad name\" left out: a name holds letters, digits and inner hyphens.\n"),
			responseJSON(map[string]any{
				"body": map[string]any{"name": "kfn"}, "bodyText": `{"name":"kfn"}`, "bodyRaw": `{"name":"kfn"}`,
				"bodyJson": map[string]any{"name": "kfn"}, "binaryLength": 14, "isBytes": true,
				"method": "GET", "path": "/items/1", "queryString": "a=1&b=x%20y&c=d=e&flag",
				"query": map[string]any{"a": "1", "b": "x%20y", "c": "d=e", "flag": ""},
				"host":  "example.com", "port": 8080, "scheme": "https", "url": "https://example.com:8080/items/1?a=1&b=x%20y&c=d=e&flag",
				"headers": map[string]any{"content-type": "application/json", "host": "example.com:8080", "x-forwarded-proto": "https",
					"x-appwrite-trigger": "http", "x-appwrite-user-id": "", "x-appwrite-user-jwt": "", "x-appwrite-execution-id": "hello-1"},
				"greeting": "hello", "functionId": "hello",
			})},
	}, {
		name: "text body without a content type (a blank contract is v4)",
		exec: execution{contract: " ", entry: "main.py", data: "plain words", files: map[string]string{
			"main.py": "def main(context):\n    r = context.req\n    return context.res.send('%s %s %d' % (r.body, r.url, r.port))\n"}},
		checks: []check{ok(200), response("plain words http://localhost/ 80"), headers(map[string]string{"content-type": "text/plain; charset=utf-8"}), stdout(""), stderr("")},
	}, {
		name:   "res.empty",
		exec:   execution{entry: "main.py", files: helpers, path: "/empty"},
		checks: []check{ok(204), response(""), headers(map[string]string{"content-type": "text/plain; charset=utf-8"})},
	}, {
		name:   "res.redirect",
		exec:   execution{entry: "main.py", files: helpers, path: "/redirect"},
		checks: []check{ok(301), headers(map[string]string{"content-type": "text/plain; charset=utf-8", "location": "https://kfn.dev/docs"})},
	}, {
		name:   "res.binary",
		exec:   execution{entry: "main.py", files: helpers, path: "/binary"},
		checks: []check{ok(200), response("hi"), headers(map[string]string{"content-type": "application/octet-stream; charset=utf-8"})},
	}, {
		name:   "res.text",
		exec:   execution{entry: "main.py", files: helpers, path: "/text"},
		checks: []check{ok(202), response("<b>héllo</b>"), headers(map[string]string{"content-type": "text/html; charset=utf-8"})},
	}, {
		name:   "res.send",
		exec:   execution{entry: "main.py", files: helpers, path: "/send"},
		checks: []check{ok(203), response("sent")},
	}, {
		name: "log and native output go to stdout, error to stderr",
		exec: execution{entry: "main.py", files: map[string]string{"main.py": `import sys

def main(context):
    context.log('log', {'b': 1}, [1, 2])
    context.error('error', 42)
    print('print', {'c': 2})
    print('to sys.stderr', file=sys.stderr)
    return context.res.send('')
`}},
		checks: []check{ok(200), stdout("log {\"b\":1} [1,2]\nprint {'c': 2}\nto sys.stderr\n"), stderr("error 42\n")},
	}, {
		name: "an exception fails with the traceback in stderr",
		exec: execution{entry: "main.py", files: map[string]string{"main.py": `def check():
    raise ValueError('boom')

def main(context):
    context.log('before')
    check()
`}},
		checks: []check{failed(), stdout("before\n"), stderrHas("Traceback (most recent call last):\n", "main.py\", line 2, in check", "ValueError: boom\n")},
	}, {
		name: "a missing return fails",
		exec: execution{entry: "main.py", files: map[string]string{"main.py": "def main(context):\n    context.log('did work')\n"}},
		checks: []check{failed(), stdout("did work\n"),
			stderr("Return statement missing. return context.res.empty() if no response is expected.\n")},
	}, {
		name:   "a value that is not a response fails",
		exec:   execution{entry: "main.py", files: map[string]string{"main.py": "def main(context):\n    return 'hello'\n"}},
		checks: []check{failed(), stderrHas("returned a str, not a response")},
	}, {
		name: "an async main",
		exec: execution{entry: "main.py", files: map[string]string{"main.py": `import asyncio

async def main(context):
    await asyncio.sleep(0.01)
    return context.res.json({'async': True})
`}},
		checks: []check{ok(200), response(`{"async":true}`)},
	}, {
		name: "a local package, a relative import and a runtime-env dependency",
		exec: execution{entry: "main.py", data: "kfn", files: with(pythonPackages, map[string]string{"main.py": `from mylib import shout
from .helpers import PREFIX
import vendored

def main(context):
    return context.res.send(PREFIX + shout(vendored.greet(context.req.body_text)))
`})},
		checks: []check{ok(200), response("helped: HELLO, KFN!!")},
	}, {
		name: "an entrypoint in a folder imports its siblings and the code directory's packages",
		exec: execution{entry: "src/main.py", data: "kfn", files: with(pythonPackages, map[string]string{
			"src/main.py":    "import sibling\nfrom . import sibling as relative\nfrom mylib import shout\n\ndef main(context):\n    return context.res.send(sibling.NAME + relative.NAME + shout(context.req.body_text))\n",
			"src/sibling.py": "NAME = 'sib '\n",
		})},
		checks: []check{ok(200), response("sib sib KFN!")},
	}, {
		name:   "a missing dependency fails",
		exec:   execution{entry: "main.py", files: map[string]string{"main.py": "import not_installed\n\ndef main(context):\n    return context.res.empty()\n"}},
		checks: []check{failed(), stderrHas("ModuleNotFoundError: No module named 'not_installed'")},
	}, {
		name:   "a missing entrypoint fails",
		exec:   execution{entry: "nope.py", files: map[string]string{"main.py": ""}},
		checks: []check{failed(), stderr("Failed to load entrypoint, file nope.py does not exist.\n")},
	}, {
		name:   "no entrypoint means main.py",
		exec:   execution{files: map[string]string{"main.py": "def main(context):\n    return context.res.send('main')\n"}},
		checks: []check{ok(200), response("main")},
	}, {
		name:   "code without main fails",
		exec:   execution{entry: "main.py", files: map[string]string{"main.py": "def handler(context):\n    pass\n"}},
		checks: []check{failed(), stderr("Function signature invalid. Did you forget to export a 'main' function?\n")},
	}, {
		name:   "a syntax error fails",
		exec:   execution{entry: "main.py", files: map[string]string{"main.py": "def main(context:\n    pass\n"}},
		checks: []check{failed(), stderrHas("SyntaxError")},
	}, {
		name:   "an unknown contract fails",
		exec:   execution{contract: "v9", entry: "main.py", files: map[string]string{"main.py": pythonEchoV4}},
		checks: []check{failed(), stderr("kfn: unknown KFN_FUNCTION_CONTRACT \"v9\": want v2 or v4.\n")},
	}, {
		name: "a timeout keeps the logs written before it",
		exec: execution{entry: "main.py", timeout: 1, files: map[string]string{"main.py": `import time

def main(context):
    context.log('before')
    print('native before')
    time.sleep(30)
`}},
		checks: []check{timedOut(), status(500), stdout("before\nnative before\n"), stderrHas("Execution timed out after 1s.")},
	}, {
		name: "a large body from KFN_REQUEST_BODY_DIR",
		exec: execution{entry: "main.py", bodyParts: []string{strings.Repeat("a", 70000), strings.Repeat("b", 70000)},
			files: map[string]string{"main.py": "def main(context):\n    t = context.req.body_text\n    return context.res.json({'n': len(t), 'last': t[-1]})\n"}},
		checks: []check{ok(200), responseJSON(map[string]any{"n": 140000, "last": "b"})},
	}}
	runCases(t, "python-3.11", cases)
}

func TestPythonV2(t *testing.T) {
	echo := map[string]string{"main.py": `import os

def main(req, res):
    return res.json({
        'payload': req.payload, 'greeting': req.variables.get('GREETING'), 'other': req.variables.get('OTHER'),
        'functionId': req.variables['APPWRITE_FUNCTION_ID'], 'data': req.variables['APPWRITE_FUNCTION_DATA'],
        'trigger': req.variables['APPWRITE_FUNCTION_TRIGGER'], 'hasPath': 'PATH' in req.variables,
        'hasKfn': any(k.startswith('KFN_') for k in req.variables), 'envIsVariables': req.env is req.variables,
        'headers': req.headers, 'processEnv': os.environ.get('GREETING'),
    }, 201)
`}
	cases := []testCase{{
		name: "payload, variables and headers; res.json with a status",
		exec: execution{contract: "v2", entry: "main.py", files: echo, data: `{"name":"kfn"}`,
			headers: map[string]string{"X-Trace": "abc"},
			env:     map[string]string{"GREETING": "hello", "OTHER": "not the function's", "KFN_FUNCTION_VARIABLES": "GREETING"}},
		checks: []check{ok(201), headers(nil), stdout(""), stderr(""), responseJSON(map[string]any{
			"payload": `{"name":"kfn"}`, "greeting": "hello", "other": nil, "functionId": "hello", "data": `{"name":"kfn"}`,
			"trigger": "http", "hasPath": false, "hasKfn": false, "envIsVariables": true,
			"headers": map[string]any{"x-trace": "abc"}, "processEnv": "hello",
		})},
	}, {
		name: "without KFN_FUNCTION_VARIABLES every non-system variable is the function's",
		exec: execution{contract: "v2", entry: "main.py", files: echo, data: "x",
			env: map[string]string{"GREETING": "hello", "OTHER": "mine too"}},
		checks: []check{ok(201), responseJSON(map[string]any{"greeting": "hello", "other": "mine too", "hasPath": false, "hasKfn": false})},
	}, {
		name:   "a large body is the payload and APPWRITE_FUNCTION_DATA",
		exec:   execution{contract: "v2", entry: "main.py", files: echo, bodyParts: []string{"big ", "body"}},
		checks: []check{ok(201), responseJSON(map[string]any{"payload": "big body", "data": "big body"})},
	}, {
		name: "res.send with a status, no return",
		exec: execution{contract: "v2", entry: "main.py", files: map[string]string{
			"main.py": "def main(req, res):\n    res.send('created', 202)\n"}},
		checks: []check{ok(202), response("created"), headers(nil)},
	}, {
		name: "print goes to stdout, sys.stderr to stderr",
		exec: execution{contract: "v2", entry: "main.py", files: map[string]string{"main.py": `import sys

def main(req, res):
    print('out')
    print('err', file=sys.stderr)
    return res.send('')
`}},
		checks: []check{ok(200), stdout("out\n"), stderr("err\n")},
	}, {
		name: "an exception fails with the traceback in stderr",
		exec: execution{contract: "v2", entry: "main.py", files: map[string]string{
			"main.py": "def main(req, res):\n    print('before')\n    raise KeyError('missing')\n"}},
		checks: []check{failed(), stdout("before\n"), stderrHas("Traceback (most recent call last):\n", "main.py\", line 3, in main", "KeyError: 'missing'\n")},
	}, {
		name: "an exception after the answer keeps the answer",
		exec: execution{contract: "v2", entry: "main.py", files: map[string]string{
			"main.py": "def main(req, res):\n    res.send('answered')\n    raise RuntimeError('after')\n"}},
		checks: []check{ok(200), response("answered"), stderrHas("RuntimeError: after")},
	}, {
		name: "no answer fails",
		exec: execution{contract: "v2", entry: "main.py", files: map[string]string{
			"main.py": "def main(req, res):\n    print('forgot to answer')\n"}},
		checks: []check{failed(), stdout("forgot to answer\n"),
			stderr("Response missing: the function ended without calling res.send() or res.json().\n")},
	}, {
		name: "a local package and a runtime-env dependency",
		exec: execution{contract: "v2", entry: "main.py", data: "v2", files: with(pythonPackages, map[string]string{
			"main.py": "from mylib import shout\nimport vendored\n\ndef main(req, res):\n    return res.send(shout(vendored.greet(req.payload)))\n",
		})},
		checks: []check{ok(200), response("HELLO, V2!!")},
	}}
	runCases(t, "python-3.11", cases)
}
