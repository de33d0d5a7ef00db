package runtimes_test

import (
	"strings"
	"testing"
)

// greeterPackage is a dependency in node_modules, as `npm install` leaves it.
var greeterPackage = map[string]string{
	"node_modules/greeter/package.json": `{"name": "greeter", "version": "1.0.0", "main": "index.js"}`,
	"node_modules/greeter/index.js":     "module.exports = (name) => `Hello, ${name}!`;\n",
}

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

const nodeEchoV4 = `module.exports = async ({ req, res }) => res.json({
  body: req.body, bodyText: req.bodyText, bodyRaw: req.bodyRaw, bodyJson: req.bodyJson,
  binaryLength: req.bodyBinary.length, isBuffer: Buffer.isBuffer(req.bodyBinary),
  method: req.method, path: req.path, query: req.query, queryString: req.queryString,
  host: req.host, port: req.port, scheme: req.scheme, url: req.url, headers: req.headers,
  greeting: process.env.GREETING, functionId: process.env.APPWRITE_FUNCTION_ID,
}, 201, { 'X-Custom': 'yes', 'X-Multi': 'a\r\nb\x01c\td', 'x-open-runtimes-secret': 'dropped', 'bad name': 'dropped' });
`

func TestNodeV4(t *testing.T) {
	helpers := map[string]string{"main.js": `module.exports = async ({ req, res }) => {
  switch (req.path) {
    case '/empty': return res.empty();
    case '/redirect': return res.redirect('https://kfn.dev/docs');
    case '/binary': return res.binary(Buffer.from([0x68, 0x69]), 200, { 'content-type': 'application/octet-stream' });
    case '/text': return res.text('<b>héllo</b>', 202, { 'Content-Type': 'text/html' });
    case '/send': return res.send('sent', 203, { 'content-type': 'text/plain; charset=latin1' });
  }
};
`}
	cases := []testCase{{
		name: "request fields, JSON response, status and headers (v4 is the default)",
		exec: execution{
			entry: "main.js", files: map[string]string{"main.js": nodeEchoV4},
			data: `{"name":"kfn"}`, method: "GET", path: "/items/1?a=1&b=x%20y&c=d=e&flag",
			headers: map[string]string{"Content-Type": "application/json", "Host": "example.com:8080",
				"X-Forwarded-Proto": "https", "x-open-runtimes-secret": "hidden"},
			env: map[string]string{"GREETING": "hello"},
		},
		checks: []check{ok(201), headers(map[string]string{"content-type": "application/json; charset=utf-8", "x-custom": "yes", "x-multi": "a b c\td"}),
			stderr("kfn: response header \"bad name\" left out: a name holds letters, digits and inner hyphens.\n"),
			responseJSON(map[string]any{
				"body": map[string]any{"name": "kfn"}, "bodyText": `{"name":"kfn"}`, "bodyRaw": `{"name":"kfn"}`,
				"bodyJson": map[string]any{"name": "kfn"}, "binaryLength": 14, "isBuffer": true,
				"method": "GET", "path": "/items/1", "queryString": "a=1&b=x%20y&c=d=e&flag",
				"query": map[string]any{"a": "1", "b": "x%20y", "c": "d=e", "flag": ""},
				"host":  "example.com", "port": 8080, "scheme": "https", "url": "https://example.com:8080/items/1?a=1&b=x%20y&c=d=e&flag",
				"headers": map[string]any{"content-type": "application/json", "host": "example.com:8080", "x-forwarded-proto": "https",
					"x-appwrite-trigger": "http", "x-appwrite-user-id": "", "x-appwrite-user-jwt": "", "x-appwrite-execution-id": "hello-1"},
				"greeting": "hello", "functionId": "hello",
			})},
	}, {
		name: "text body without a content type (a blank contract is v4)",
		exec: execution{contract: " ", entry: "main.js", data: "plain words",
			files: map[string]string{"main.js": `module.exports = async ({ req, res }) => res.send(req.body + ' ' + req.url + ' ' + req.port);`}},
		checks: []check{ok(200), response("plain words http://localhost/ 80"), headers(map[string]string{"content-type": "text/plain; charset=utf-8"}), stdout(""), stderr("")},
	}, {
		name:   "res.empty",
		exec:   execution{entry: "main.js", files: helpers, path: "/empty"},
		checks: []check{ok(204), response(""), headers(map[string]string{"content-type": "text/plain; charset=utf-8"})},
	}, {
		name:   "res.redirect",
		exec:   execution{entry: "main.js", files: helpers, path: "/redirect"},
		checks: []check{ok(301), headers(map[string]string{"content-type": "text/plain; charset=utf-8", "location": "https://kfn.dev/docs"})},
	}, {
		name:   "res.binary",
		exec:   execution{entry: "main.js", files: helpers, path: "/binary"},
		checks: []check{ok(200), response("hi"), headers(map[string]string{"content-type": "application/octet-stream; charset=utf-8"})},
	}, {
		name:   "res.text",
		exec:   execution{entry: "main.js", files: helpers, path: "/text"},
		checks: []check{ok(202), response("<b>héllo</b>"), headers(map[string]string{"content-type": "text/html; charset=utf-8"})},
	}, {
		name:   "res.send keeps a charset",
		exec:   execution{entry: "main.js", files: helpers, path: "/send"},
		checks: []check{ok(203), response("sent"), headers(map[string]string{"content-type": "text/plain; charset=latin1"})},
	}, {
		name: "log and native console output go to stdout, error to stderr",
		exec: execution{entry: "main.js", files: map[string]string{"main.js": `module.exports = async ({ res, log, error }) => {
  log('log', { b: 1 }, [1, 2]);
  error('error', 42);
  console.log('console.log', { c: 2 });
  console.error('console.error');
  return res.send('');
};`}},
		checks: []check{ok(200), stdout("log {\"b\":1} [1,2]\nconsole.log {\"c\":2}\nconsole.error\n"), stderr("error 42\n")},
	}, {
		name: "a thrown error fails with the stack in stderr",
		exec: execution{entry: "main.js", files: map[string]string{"main.js": `function check() { throw new Error('boom'); }
module.exports = async ({ log }) => { log('before'); check(); };`}},
		checks: []check{failed(), stdout("before\n"), stderrHas("Error: boom\n", "at check (", "main.js:1:")},
	}, {
		name: "a missing return fails",
		exec: execution{entry: "main.js", files: map[string]string{"main.js": `module.exports = async ({ log }) => { log('did work'); };`}},
		checks: []check{failed(), stdout("did work\n"),
			stderr("Return statement missing. return context.res.empty() if no response is expected.\n")},
	}, {
		name:   "a promise that never settles fails",
		exec:   execution{entry: "main.js", files: map[string]string{"main.js": "module.exports = () => new Promise(() => {});\n"}},
		checks: []check{failed(), stderr("The function never returned: its promise was still pending with nothing left to run.\n")},
	}, {
		name:   "a value that is not a response fails",
		exec:   execution{entry: "main.js", files: map[string]string{"main.js": `module.exports = async () => 'hello';`}},
		checks: []check{failed(), stderrHas("returned a string, not a response")},
	}, {
		name: "an error thrown in a callback fails",
		exec: execution{entry: "main.js", files: map[string]string{"main.js": `module.exports = async ({ res }) => {
  setTimeout(() => { throw new Error('late'); }, 0);
  await new Promise((r) => setTimeout(r, 200));
  return res.send('too late');
};`}},
		checks: []check{failed(), stderrHas("Error: late")},
	}, {
		name:   "ES module: .mjs",
		exec:   execution{entry: "main.mjs", files: map[string]string{"main.mjs": "export default async ({ res }) => res.send('esm');\n"}},
		checks: []check{ok(200), response("esm")},
	}, {
		name: "ES module: \"type\": \"module\", entrypoint in a folder",
		exec: execution{entry: "src/main.js", files: map[string]string{
			"package.json": `{"type": "module"}`,
			"src/main.js":  "import { suffix } from './util.js';\nexport default async ({ res }) => res.send('esm' + suffix);\n",
			"src/util.js":  "export const suffix = ' in a folder';\n",
		}},
		checks: []check{ok(200), response("esm in a folder")},
	}, {
		name:   "CommonJS: exports.default",
		exec:   execution{entry: "main.cjs", files: map[string]string{"main.cjs": "exports.default = async ({ res }) => res.send('cjs default');\n"}},
		checks: []check{ok(200), response("cjs default")},
	}, {
		name: "CommonJS: a dependency in node_modules",
		exec: execution{entry: "src/index.js", data: "kfn", files: with(greeterPackage, map[string]string{
			"src/index.js": "const greet = require('greeter');\nmodule.exports = async ({ req, res }) => res.send(greet(req.bodyText));\n",
		})},
		checks: []check{ok(200), response("Hello, kfn!")},
	}, {
		name: "ES module: a dependency in node_modules",
		exec: execution{entry: "index.mjs", data: "esm", files: with(greeterPackage, map[string]string{
			"index.mjs": "import greet from 'greeter';\nexport default async ({ req, res }) => res.send(greet(req.bodyText));\n",
		})},
		checks: []check{ok(200), response("Hello, esm!")},
	}, {
		name:   "a missing dependency fails",
		exec:   execution{entry: "index.js", files: map[string]string{"index.js": "require('not-installed');\nmodule.exports = async ({ res }) => res.send('');\n"}},
		checks: []check{failed(), stderrHas("Cannot find module 'not-installed'")},
	}, {
		name:   "a missing entrypoint fails",
		exec:   execution{entry: "nope.js", files: map[string]string{"main.js": ""}},
		checks: []check{failed(), stderr("Failed to load entrypoint, file nope.js does not exist.\n")},
	}, {
		name:   "no entrypoint means index.js",
		exec:   execution{files: map[string]string{"index.js": "module.exports = async ({ res }) => res.send('index');\n"}},
		checks: []check{ok(200), response("index")},
	}, {
		name:   "code exporting no function fails",
		exec:   execution{entry: "main.js", files: map[string]string{"main.js": "module.exports = { answer: 42 };\n"}},
		checks: []check{failed(), stderrHas("Function signature invalid")},
	}, {
		name:   "a syntax error fails",
		exec:   execution{entry: "main.js", files: map[string]string{"main.js": "module.exports = async ({ res }) => { return res.send('x'\n"}},
		checks: []check{failed(), stderrHas("SyntaxError")},
	}, {
		name:   "an unknown contract fails",
		exec:   execution{contract: "v9", entry: "main.js", files: map[string]string{"main.js": nodeEchoV4}},
		checks: []check{failed(), stderr("kfn: unknown KFN_FUNCTION_CONTRACT \"v9\": want v2 or v4.\n")},
	}, {
		name: "a timeout keeps the logs written before it",
		exec: execution{entry: "main.js", timeout: 1, files: map[string]string{"main.js": `module.exports = async ({ log }) => {
  log('before');
  setInterval(() => {}, 1000);
  await new Promise(() => {});
};`}},
		checks: []check{timedOut(), status(500), stdout("before\n"), stderrHas("Execution timed out after 1s.")},
	}, {
		name: "a large body from KFN_REQUEST_BODY_DIR",
		exec: execution{entry: "main.js", bodyParts: []string{strings.Repeat("a", 70000), strings.Repeat("b", 70000)},
			files: map[string]string{"main.js": "module.exports = async ({ req, res }) => res.json({ n: req.bodyText.length, last: req.bodyText.slice(-1) });\n"}},
		checks: []check{ok(200), responseJSON(map[string]any{"n": 140000, "last": "b"})},
	}}
	runCases(t, "node-20", cases)
}

func TestNodeV2(t *testing.T) {
	echo := map[string]string{"index.js": `module.exports = async function (req, res) {
  res.json({
    payload: req.payload, greeting: req.variables.GREETING, other: req.variables.OTHER,
    functionId: req.variables.APPWRITE_FUNCTION_ID, data: req.variables.APPWRITE_FUNCTION_DATA,
    trigger: req.variables.APPWRITE_FUNCTION_TRIGGER, hasPath: 'PATH' in req.variables,
    hasKfn: Object.keys(req.variables).some((k) => k.startsWith('KFN_')),
    envIsVariables: req.env === req.variables, headers: req.headers, processEnv: process.env.GREETING,
  }, 201);
};
`}
	cases := []testCase{{
		name: "payload, variables and headers; res.json with a status",
		exec: execution{contract: "v2", entry: "index.js", files: echo, data: `{"name":"kfn"}`,
			headers: map[string]string{"X-Trace": "abc"},
			env:     map[string]string{"GREETING": "hello", "OTHER": "not the function's", "KFN_FUNCTION_VARIABLES": "GREETING"}},
		checks: []check{ok(201), headers(nil), stdout(""), stderr(""), responseJSON(map[string]any{
			"payload": `{"name":"kfn"}`, "greeting": "hello", "other": nil, "functionId": "hello", "data": `{"name":"kfn"}`,
			"trigger": "http", "hasPath": false, "hasKfn": false, "envIsVariables": true,
			"headers": map[string]any{"x-trace": "abc"}, "processEnv": "hello",
		})},
	}, {
		name: "without KFN_FUNCTION_VARIABLES every non-system variable is the function's",
		exec: execution{contract: "v2", entry: "index.js", files: echo, data: "x",
			env: map[string]string{"GREETING": "hello", "OTHER": "mine too"}},
		checks: []check{ok(201), responseJSON(map[string]any{"greeting": "hello", "other": "mine too", "hasPath": false, "hasKfn": false})},
	}, {
		name:   "a large body is the payload and APPWRITE_FUNCTION_DATA",
		exec:   execution{contract: "v2", entry: "index.js", files: echo, bodyParts: []string{"big ", "body"}},
		checks: []check{ok(201), responseJSON(map[string]any{"payload": "big body", "data": "big body"})},
	}, {
		name: "res.send with a status",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{
			"index.js": "module.exports = async (req, res) => { res.send('created', 202); };\n"}},
		checks: []check{ok(202), response("created"), headers(nil)},
	}, {
		name: "res.send of an object",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{
			"index.js": "module.exports = async (req, res) => { res.send({ a: [1, 2] }); };\n"}},
		checks: []check{ok(200), response(`{"a":[1,2]}`)},
	}, {
		name: "a callback answers after the handler returned",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{
			"index.js": "module.exports = (req, res) => { setTimeout(() => res.send('later'), 20); };\n"}},
		checks: []check{ok(200), response("later")},
	}, {
		name: "work after the answer completes",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{"index.js": `module.exports = async (req, res) => {
  res.send('ok');
  res.send('ignored');
  await new Promise((r) => setTimeout(r, 20));
  console.log('after the answer');
};`}},
		checks: []check{ok(200), response("ok"), stdout("after the answer\n"), stderr("kfn: the response was already sent; this one is ignored.\n")},
	}, {
		name: "console.log, info and debug go to stdout, error and warn to stderr",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{"index.js": `module.exports = async (req, res) => {
  console.log('log', { a: 1 });
  console.info('info');
  console.error('error', [1]);
  console.warn('warn');
  res.send('');
};`}},
		checks: []check{ok(200), stdout("log {\"a\":1}\ninfo\n"), stderr("error [1]\nwarn\n")},
	}, {
		name: "a thrown error fails with the stack in stderr",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{
			"index.js": "module.exports = async (req, res) => { console.log('before'); throw new TypeError('bad input'); };\n"}},
		checks: []check{failed(), stdout("before\n"), stderrHas("TypeError: bad input\n", "index.js:1:")},
	}, {
		name: "an error after the answer keeps the answer",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{
			"index.js": "module.exports = async (req, res) => { res.send('answered'); throw new Error('after'); };\n"}},
		checks: []check{ok(200), response("answered"), stderrHas("Error: after")},
	}, {
		name: "no answer fails",
		exec: execution{contract: "v2", entry: "index.js", files: map[string]string{
			"index.js": "module.exports = async (req, res) => { console.log('forgot to answer'); };\n"}},
		checks: []check{failed(), stdout("forgot to answer\n"),
			stderr("Response missing: the function ended without calling res.send() or res.json().\n")},
	}, {
		name: "ES module default export",
		exec: execution{contract: "v2", entry: "index.mjs", data: "esm", files: map[string]string{
			"index.mjs": "export default async (req, res) => { res.send(req.payload + ' v2'); };\n"}},
		checks: []check{ok(200), response("esm v2")},
	}, {
		name: "a dependency in node_modules",
		exec: execution{contract: "v2", entry: "index.js", data: "v2", files: with(greeterPackage, map[string]string{
			"index.js": "const greet = require('greeter');\nmodule.exports = async (req, res) => res.send(greet(req.payload));\n",
		})},
		checks: []check{ok(200), response("Hello, v2!")},
	}}
	runCases(t, "node-20", cases)
}
