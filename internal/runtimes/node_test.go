package runtimes_test

// greeterPackage is a dependency in node_modules, as `npm install` leaves it.
var greeterPackage = map[string]string{
	"node_modules/greeter/package.json": `{"name": "greeter", "version": "1.0.0", "main": "index.js"}`,
	"node_modules/greeter/index.js":     "module.exports = (name) => `Hello, ${name}!`;\n",
}

// nodeCode is the node-20 wrapper's code for the shared cases.
var nodeCode = wrapperCode{
	main: "main.js", entrypoint: "index.js",
	echo: `module.exports = async ({ req, res }) => res.json({
  body: req.body, bodyText: req.bodyText, bodyRaw: req.bodyRaw, bodyJson: req.bodyJson,
  binaryLength: req.bodyBinary.length, isBinary: Buffer.isBuffer(req.bodyBinary),
  method: req.method, path: req.path, query: req.query, queryString: req.queryString,
  host: req.host, port: req.port, scheme: req.scheme, url: req.url, headers: req.headers,
  greeting: process.env.GREETING, functionId: process.env.APPWRITE_FUNCTION_ID,
}, 201, { 'X-Custom': 'yes', 'X-Multi': 'a\r\nb\x01c\td', 'x-open-runtimes-secret': 'dropped', 'bad name': 'dropped' });
`,
	text: `module.exports = async ({ req, res }) => res.send(req.body + ' ' + req.url + ' ' + req.port);`,
	helpers: `module.exports = async ({ req, res }) => {
  switch (req.path) {
    case '/empty': return res.empty();
    case '/redirect': return res.redirect('https://kfn.dev/docs');
    case '/binary': return res.binary(Buffer.from([0x68, 0x69]), 200, { 'content-type': 'application/octet-stream' });
    case '/text': return res.text('<b>héllo</b>', 202, { 'Content-Type': 'text/html' });
    case '/send': return res.send('sent', 203, { 'content-type': 'text/plain; charset=latin1' });
  }
};
`,
	noReturn:    `module.exports = async ({ log }) => { log('did work'); };`,
	named:       "module.exports = async ({ res }) => res.send('index');\n",
	syntaxError: "module.exports = async ({ res }) => { return res.send('x'\n",
	largeBody:   "module.exports = async ({ req, res }) => res.json({ n: req.bodyText.length, last: req.bodyText.slice(-1) });\n",
	echoV2: `module.exports = async function (req, res) {
  res.json({
    payload: req.payload, greeting: req.variables.GREETING, other: req.variables.OTHER,
    functionId: req.variables.APPWRITE_FUNCTION_ID, data: req.variables.APPWRITE_FUNCTION_DATA,
    trigger: req.variables.APPWRITE_FUNCTION_TRIGGER, hasPath: 'PATH' in req.variables,
    hasKfn: Object.keys(req.variables).some((k) => k.startsWith('KFN_')),
    envIsVariables: req.env === req.variables, headers: req.headers, processEnv: process.env.GREETING,
  }, 201);
};
`,
	sendV2:      "module.exports = async (req, res) => { res.send('created', 202); };\n",
	noAnswerV2:  "module.exports = async (req, res) => { console.log('forgot to answer'); };\n",
	notResponse: failure{`module.exports = async () => 'hello';`, []check{stderrHas("returned a string, not a response")}},
	missingDependency: failure{"require('not-installed');\nmodule.exports = async ({ res }) => res.send('');\n",
		[]check{stderrHas("Cannot find module 'not-installed'")}},
	noFunction: failure{"module.exports = { answer: 42 };\n", []check{stderrHas("Function signature invalid")}},
	timeout: failure{`module.exports = async ({ log }) => {
  log('before');
  setInterval(() => {}, 1000);
  await new Promise(() => {});
};`, []check{stdout("before\n")}},
}

// nodeV4 are the node-20 wrapper's own v4 cases, besides the shared ones.
var nodeV4 = []testCase{{
	name:   "res.send keeps a charset",
	exec:   execution{entry: "main.js", files: code("main.js", nodeCode.helpers), path: "/send"},
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
	name:   "a promise that never settles fails",
	exec:   execution{entry: "main.js", files: map[string]string{"main.js": "module.exports = () => new Promise(() => {});\n"}},
	checks: []check{failed(), stderr("The function never returned: its promise was still pending with nothing left to run.\n")},
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
}}

// nodeV2 are the node-20 wrapper's own v2 cases, besides the shared ones.
var nodeV2 = []testCase{{
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
