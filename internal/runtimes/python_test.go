package runtimes_test

// A local package next to the entrypoint, and one vendored in a runtime-env
// virtualenv, where Appwrite's Python build installs requirements.txt.
var pythonPackages = map[string]string{
	"mylib/__init__.py": "from .text import shout\n",
	"mylib/text.py":     "def shout(s):\n    return s.upper() + '!'\n",
	"helpers.py":        "PREFIX = 'helped: '\n",
	"runtime-env/lib/python3.11/site-packages/vendored/__init__.py": "def greet(name):\n    return 'Hello, %s!' % name\n",
}

// pythonCode is the python-3.11 wrapper's code for the shared cases.
var pythonCode = wrapperCode{
	main: "main.py", entrypoint: "main.py",
	echo: `import os

def main(context):
    req = context.req
    return context.res.json({
        'body': req.body, 'bodyText': req.body_text, 'bodyRaw': req.body_raw, 'bodyJson': req.body_json,
        'binaryLength': len(req.body_binary), 'isBinary': isinstance(req.body_binary, bytes),
        'method': req.method, 'path': req.path, 'query': req.query, 'queryString': req.query_string,
        'host': req.host, 'port': req.port, 'scheme': req.scheme, 'url': req.url, 'headers': req.headers,
        'greeting': os.environ.get('GREETING'), 'functionId': os.environ['APPWRITE_FUNCTION_ID'],
    }, 201, {'X-Custom': 'yes', 'X-Multi': 'a\r\nb\x01c\td', 'x-open-runtimes-secret': 'dropped', 'bad name': 'dropped'})
`,
	text: "def main(context):\n    r = context.req\n    return context.res.send('%s %s %d' % (r.body, r.url, r.port))\n",
	helpers: `def main(context):
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
`,
	noReturn:    "def main(context):\n    context.log('did work')\n",
	named:       "def main(context):\n    return context.res.send('main')\n",
	syntaxError: "def main(context:\n    pass\n",
	largeBody:   "def main(context):\n    t = context.req.body_text\n    return context.res.json({'n': len(t), 'last': t[-1]})\n",
	echoV2: `import os

def main(req, res):
    return res.json({
        'payload': req.payload, 'greeting': req.variables.get('GREETING'), 'other': req.variables.get('OTHER'),
        'functionId': req.variables['APPWRITE_FUNCTION_ID'], 'data': req.variables['APPWRITE_FUNCTION_DATA'],
        'trigger': req.variables['APPWRITE_FUNCTION_TRIGGER'], 'hasPath': 'PATH' in req.variables,
        'hasKfn': any(k.startswith('KFN_') for k in req.variables), 'envIsVariables': req.env is req.variables,
        'headers': req.headers, 'processEnv': os.environ.get('GREETING'),
    }, 201)
`,
	sendV2:      "def main(req, res):\n    res.send('created', 202)\n",
	noAnswerV2:  "def main(req, res):\n    print('forgot to answer')\n",
	notResponse: failure{"def main(context):\n    return 'hello'\n", []check{stderrHas("returned a str, not a response")}},
	missingDependency: failure{"import not_installed\n\ndef main(context):\n    return context.res.empty()\n",
		[]check{stderrHas("ModuleNotFoundError: No module named 'not_installed'")}},
	noFunction: failure{"def handler(context):\n    pass\n",
		[]check{stderr("Function signature invalid. Did you forget to export a 'main' function?\n")}},
	timeout: failure{`import time

def main(context):
    context.log('before')
    print('native before')
    time.sleep(30)
`, []check{stdout("before\nnative before\n")}},
}

// pythonV4 are the python-3.11 wrapper's own v4 cases, besides the shared ones.
var pythonV4 = []testCase{{
	name:   "res.send",
	exec:   execution{entry: "main.py", files: code("main.py", pythonCode.helpers), path: "/send"},
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
}}

// pythonV2 are the python-3.11 wrapper's own v2 cases, besides the shared ones.
var pythonV2 = []testCase{{
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
	name: "a local package and a runtime-env dependency",
	exec: execution{contract: "v2", entry: "main.py", data: "v2", files: with(pythonPackages, map[string]string{
		"main.py": "from mylib import shout\nimport vendored\n\ndef main(req, res):\n    return res.send(shout(vendored.greet(req.payload)))\n",
	})},
	checks: []check{ok(200), response("HELLO, V2!!")},
}}
