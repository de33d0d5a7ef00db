// kfn-node.mjs runs an unmodified Appwrite function written for Node.js under
// the kfn runner (`kfn run -- node kfn-node.mjs <entrypoint>`). It maps
// Appwrite's runtime API onto kfn's file/env contract
// (docs/runtime-contract.md); docs/runtimes.md describes the mapping.
//
//   KFN_FUNCTION_CONTRACT=v4 (default; also v3, v5): Appwrite 1.4+
//     export default async ({ req, res, log, error }) => res.json({...})
//   KFN_FUNCTION_CONTRACT=v2: Appwrite 1.0-1.3
//     module.exports = async (req, res) => res.json({...})
//
// The entrypoint is a path relative to the working directory (the code
// directory, /kfn/code); CommonJS and ES modules both load, and packages
// resolve from node_modules next to it as usual.
//
// The response goes to $KFN_RESPONSE_FILE, the status code to
// $KFN_STATUS_CODE_FILE and the headers to $KFN_RESPONSE_HEADERS_FILE. A
// thrown error, a missing response or code that cannot be loaded exits 1:
// status 500 with the reason (the stack) in stderr.

import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { pathToFileURL } from 'node:url';

const env = process.env;

const MISSING_RETURN = 'Return statement missing. return context.res.empty() if no response is expected.';
const MISSING_RESPONSE = 'Response missing: the function ended without calling res.send() or res.json().';
const NEVER_SETTLED = 'The function never returned: its promise was still pending with nothing left to run.';

// ---------------------------------------------------------------- output ---

const ioDir = env.KFN_IO_DIR || '/kfn/io';
const outFiles = {
  response: env.KFN_RESPONSE_FILE || path.join(ioDir, 'response'),
  statusCode: env.KFN_STATUS_CODE_FILE || path.join(ioDir, 'status-code'),
  headers: env.KFN_RESPONSE_HEADERS_FILE || path.join(ioDir, 'response-headers'),
};

// Writes to stdout and stderr are synchronous for pipes and files on Linux,
// so nothing is lost when the process exits right after them.
const writeOut = (text) => process.stdout.write(text);
const writeErr = (text) => process.stderr.write(text);

let finished = false;

// finish writes the response and ends the process.
function finish(response) {
  if (finished) return;
  finished = true;
  let code = 0;
  try {
    fs.writeFileSync(outFiles.response, response.body);
    fs.writeFileSync(outFiles.statusCode, `${response.statusCode}\n`);
    const lines = headerLines(response.headers);
    if (lines) fs.writeFileSync(outFiles.headers, lines);
  } catch (e) {
    writeErr(`kfn: cannot write the response: ${e.message}\n`);
    code = 1;
  }
  process.exit(code);
}

// fail ends the process as a failed execution: status 500, the reason in
// stderr, no response body.
function fail(reason) {
  if (finished) return;
  finished = true;
  if (reason) writeErr(reason.endsWith('\n') ? reason : `${reason}\n`);
  process.exit(1);
}

// headerLines renders headers as the runner reads them: "name: value" lines.
// A name the runner would refuse (it then drops every header) is left out
// here instead, with a line in stderr.
function headerLines(headers) {
  let out = '';
  for (const [name, value] of Object.entries(headers || {})) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/.test(name)) {
      writeErr(`kfn: response header ${JSON.stringify(name)} left out: a name holds letters, digits and inner hyphens.\n`);
      continue;
    }
    const text = Array.isArray(value) ? value.join(', ') : `${value ?? ''}`;
    // The runner refuses control characters (a line break would split the
    // header): each run of them becomes a space.
    out += `${name}: ${text.replace(/[\x00-\x08\x0a-\x1f\x7f]+/g, ' ')}\n`;
  }
  return out;
}

function toBuffer(body) {
  if (Buffer.isBuffer(body)) return body;
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return Buffer.from(`${body ?? ''}`, 'utf8');
}

// stackOf is what a thrown value says in stderr.
function stackOf(e) {
  if (e instanceof Error) return e.stack || `${e}`;
  if (e && typeof e === 'object') return e.stack ? `${e.stack}` : util.inspect(e);
  return `${e}`;
}

// format renders log arguments as Appwrite's runtimes do: objects as JSON,
// errors as their stack, joined with spaces.
function format(args) {
  return args
    .map((a) => {
      if (a instanceof Error) return a.stack || `${a}`;
      if (a !== null && typeof a === 'object') {
        try {
          return JSON.stringify(a);
        } catch {
          return util.inspect(a);
        }
      }
      return `${a}`;
    })
    .join(' ');
}

// ----------------------------------------------------------------- input ---

function requestBody() {
  if (env.KFN_REQUEST_FILE) {
    try {
      return fs.readFileSync(env.KFN_REQUEST_FILE);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
  }
  return Buffer.from(env.APPWRITE_FUNCTION_DATA || '', 'utf8');
}

// requestHeaders are the execution's headers, names lower-cased, without
// the open-runtimes transport headers.
function requestHeaders() {
  let raw = {};
  try {
    raw = JSON.parse(env.KFN_REQUEST_HEADERS || '{}') || {};
  } catch {
    writeErr('kfn: KFN_REQUEST_HEADERS is not a JSON object; the request has no headers.\n');
  }
  const headers = {};
  for (const [name, value] of Object.entries(raw)) {
    const lower = name.toLowerCase();
    if (!lower.startsWith('x-open-runtimes-')) headers[lower] = `${value ?? ''}`;
  }
  return headers;
}

// Variables of the pod that are not the function's own, when the operator
// does not list the function's variables in KFN_FUNCTION_VARIABLES.
const systemNames = new Set(['PATH', 'HOME', 'HOSTNAME', 'PWD', 'OLDPWD', 'SHLVL', 'TERM', 'LANG', 'LANGUAGE',
  'TZ', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'SSL_CERT_FILE', 'SSL_CERT_DIR', '_']);
const systemPrefixes = ['KFN_', 'APPWRITE_', 'OPEN_RUNTIMES_', 'KUBERNETES_', 'NODE_', 'PYTHON', 'LC_', 'npm_'];

// functionVariables is Appwrite 1.0's req.variables: the function's own
// variables plus every APPWRITE_FUNCTION_* value.
function functionVariables(bodyText) {
  const names =
    env.KFN_FUNCTION_VARIABLES !== undefined
      ? env.KFN_FUNCTION_VARIABLES.split(',').map((n) => n.trim()).filter(Boolean)
      : Object.keys(env).filter((n) => !systemNames.has(n) && !systemPrefixes.some((p) => n.startsWith(p)));
  const vars = {};
  for (const name of names) if (env[name] !== undefined) vars[name] = env[name];
  for (const name of Object.keys(env)) if (name.startsWith('APPWRITE_FUNCTION_')) vars[name] = env[name];
  // A large body is not in the environment; Appwrite's DATA is the body.
  vars.APPWRITE_FUNCTION_DATA = bodyText;
  return vars;
}

// ------------------------------------------------------------------ load ---

class LoadError extends Error {}

async function loadFunction(entrypoint) {
  const file = path.resolve(entrypoint);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new LoadError(`Failed to load entrypoint, file ${entrypoint} does not exist.`);
  }
  // import() loads ES modules and CommonJS alike; a CommonJS module's
  // module.exports is its default export.
  const ns = await import(pathToFileURL(file).href);
  let fn = ns.default;
  if (fn && typeof fn !== 'function' && typeof fn.default === 'function') fn = fn.default;
  if (typeof fn !== 'function') {
    throw new LoadError(
      `Function signature invalid: ${entrypoint} must export a function ` +
        '(module.exports = async (...) => {...} or export default async (...) => {...}).',
    );
  }
  return fn;
}

// -------------------------------------------------------------------- v4 ---

function v4Request(bodyBinary, headers) {
  const full = env.KFN_REQUEST_PATH || '/';
  const q = full.indexOf('?');
  let reqPath = q < 0 ? full : full.slice(0, q);
  if (!reqPath.startsWith('/')) reqPath = `/${reqPath}`;
  const queryString = q < 0 ? '' : full.slice(q + 1);
  const query = {};
  for (const param of queryString.split('&')) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    if (key) query[key] = eq < 0 ? '' : param.slice(eq + 1);
  }
  const scheme = headers['x-forwarded-proto'] || 'http';
  const defaultPort = scheme === 'https' ? 443 : 80;
  const hostHeader = headers.host || 'localhost';
  const colon = hostHeader.lastIndexOf(':');
  const host = colon < 0 || hostHeader.endsWith(']') ? hostHeader : hostHeader.slice(0, colon);
  const port = host === hostHeader ? defaultPort : Number(hostHeader.slice(colon + 1)) || defaultPort;
  const url = `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${reqPath}${queryString ? `?${queryString}` : ''}`;
  const contentType = `${headers['content-type'] || 'text/plain'}`.toLowerCase();

  return {
    get bodyBinary() {
      return bodyBinary;
    },
    get bodyText() {
      return bodyBinary.toString('utf8');
    },
    get bodyRaw() {
      return bodyBinary.toString('utf8');
    },
    get bodyJson() {
      return JSON.parse(bodyBinary.toString('utf8'));
    },
    // body is bodyJson for a JSON request ({} when empty), else bodyText.
    get body() {
      if (contentType.startsWith('application/json')) {
        return bodyBinary.length > 0 ? JSON.parse(bodyBinary.toString('utf8')) : {};
      }
      return bodyBinary.toString('utf8');
    },
    headers,
    method: env.KFN_REQUEST_METHOD || 'POST',
    host,
    scheme,
    query,
    queryString,
    port,
    url,
    path: reqPath,
  };
}

// v4Response builds the values a v4 function returns; closures, so that
// destructured methods work too.
function v4Response() {
  const binary = (bytes, statusCode = 200, headers = {}) => ({ body: bytes, statusCode, headers });
  const text = (body, statusCode = 200, headers = {}) => binary(Buffer.from(`${body}`, 'utf8'), statusCode, headers);
  return {
    binary,
    text,
    send: (body, statusCode = 200, headers = {}) =>
      Buffer.isBuffer(body) ? binary(body, statusCode, headers) : text(`${body}`, statusCode, headers),
    json: (obj, statusCode = 200, headers = {}) =>
      text(JSON.stringify(obj), statusCode, { ...headers, 'content-type': 'application/json' }),
    empty: () => text('', 204, {}),
    redirect: (url, statusCode = 301, headers = {}) => text('', statusCode, { ...headers, location: url }),
  };
}

// v4Output turns what the function returned into the response to write, as
// open-runtimes does: defaults, lower-cased names, no x-open-runtimes-*
// header, and a content-type with a charset.
function v4Output(output) {
  const headers = {};
  for (const [name, value] of Object.entries(output.headers ?? {})) {
    const lower = name.toLowerCase();
    if (!lower.startsWith('x-open-runtimes-')) headers[lower] = value;
  }
  let contentType = `${headers['content-type'] ?? 'text/plain'}`.toLowerCase();
  if (!contentType.startsWith('multipart/') && !contentType.includes('charset=')) contentType += '; charset=utf-8';
  headers['content-type'] = contentType;
  return { body: toBuffer(output.body ?? ''), statusCode: output.statusCode ?? 200, headers };
}

async function runV4(entrypoint) {
  const headers = requestHeaders();
  // What Appwrite 1.4+ tells a function in headers; callers cannot set these.
  headers['x-appwrite-trigger'] = env.APPWRITE_FUNCTION_TRIGGER || 'http';
  if (env.APPWRITE_FUNCTION_EVENT) headers['x-appwrite-event'] = env.APPWRITE_FUNCTION_EVENT;
  headers['x-appwrite-user-id'] = env.APPWRITE_FUNCTION_USER_ID || '';
  headers['x-appwrite-user-jwt'] = env.APPWRITE_FUNCTION_JWT || '';
  if (env.APPWRITE_FUNCTION_EXECUTION_ID) headers['x-appwrite-execution-id'] = env.APPWRITE_FUNCTION_EXECUTION_ID;

  const context = {
    req: v4Request(requestBody(), headers),
    res: v4Response(),
    log: (...args) => writeOut(`${format(args)}\n`),
    error: (...args) => writeErr(`${format(args)}\n`),
  };
  // As in Appwrite 1.4+, native console output (all of it) is a log.
  const native = (...args) => writeOut(`${format(args)}\n`);
  console.log = console.info = console.debug = console.warn = console.error = native;

  // Nothing left to do and the function's promise still pending: it will
  // never return (Node.js would exit 0, which would read as a 200).
  process.on('beforeExit', () => fail(NEVER_SETTLED));

  const fn = await loadFunction(entrypoint);
  const output = await fn(context);
  if (output === null || output === undefined) return fail(MISSING_RETURN);
  if (typeof output !== 'object' || Buffer.isBuffer(output)) {
    return fail(`The function returned a ${typeof output}, not a response: return context.res.send(...), context.res.json(...) or context.res.empty().`);
  }
  finish(v4Output(output));
}

// -------------------------------------------------------------------- v2 ---

async function runV2(entrypoint) {
  const body = requestBody();
  const variables = functionVariables(body.toString('utf8'));
  const req = {
    payload: body.toString('utf8'),
    variables,
    env: variables, // the name before Appwrite 1.0
    headers: requestHeaders(),
  };

  // Appwrite 1.0 answers when res.send or res.json is called, even from a
  // callback after the handler returned; the first answer counts.
  let response = null;
  let handlerDone = false;
  const answer = (body, status) => {
    if (response) {
      writeErr('kfn: the response was already sent; this one is ignored.\n');
      return;
    }
    response = { body, statusCode: status, headers: {} };
    if (handlerDone) finish(response);
  };
  const res = {
    send: (text, status = 200) => {
      let body = text;
      if (!Buffer.isBuffer(text)) {
        body = text === null || text === undefined ? '' : typeof text === 'object' ? JSON.stringify(text) : `${text}`;
      }
      answer(toBuffer(body), status);
    },
    json: (obj, status = 200) => answer(Buffer.from(JSON.stringify(obj) ?? '', 'utf8'), status),
  };

  console.log = console.info = console.debug = (...args) => writeOut(`${format(args)}\n`);
  console.warn = console.error = (...args) => writeErr(`${format(args)}\n`);

  // Nothing left to do and no response: the function will never answer.
  process.on('beforeExit', () => (response ? finish(response) : fail(MISSING_RESPONSE)));
  onCrash = (e) => {
    if (!response) return fail(stackOf(e));
    writeErr(`${stackOf(e)}\n`);
    finish(response);
  };

  const fn = await loadFunction(entrypoint);
  await fn(req, res);
  handlerDone = true;
  if (response) finish(response);
  // Otherwise wait: a callback may still answer, or beforeExit fails it.
}

// ------------------------------------------------------------------ main ---

let onCrash = (e) => fail(stackOf(e));
process.on('uncaughtException', (e) => onCrash(e));
process.on('unhandledRejection', (e) => onCrash(e));

const contract = (env.KFN_FUNCTION_CONTRACT || '').trim().toLowerCase() || 'v4';
const entrypoint = process.argv[2] || 'index.js';
if (!env.APPWRITE_FUNCTION_RUNTIME_VERSION) {
  env.APPWRITE_FUNCTION_RUNTIME_VERSION = process.versions.node.split('.').slice(0, 2).join('.');
}

let run;
if (contract === 'v2') run = runV2;
else if (contract === 'v3' || contract === 'v4' || contract === 'v5') run = runV4;
else fail(`kfn: unknown KFN_FUNCTION_CONTRACT ${JSON.stringify(contract)}: want v2 or v4.`);

if (run) {
  run(entrypoint).catch((e) => {
    if (e instanceof LoadError) return fail(e.message);
    if (e && e.code === 'ERR_MODULE_NOT_FOUND') writeErr('Could not load code file.\n');
    onCrash(e);
  });
}
