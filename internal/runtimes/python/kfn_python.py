"""kfn_python runs an unmodified Appwrite function written for Python under the
kfn runner (`kfn run -- python3 kfn_python.py <entrypoint>`). It maps
Appwrite's runtime API onto kfn's file/env contract
(docs/runtime-contract.md); docs/runtimes.md describes the mapping.

  KFN_FUNCTION_CONTRACT=v4 (default; also v3, v5): Appwrite 1.4+
      def main(context): return context.res.json({...})     (may be async)
  KFN_FUNCTION_CONTRACT=v2: Appwrite 1.0-1.3
      def main(req, res): return res.json({...})

The entrypoint is a path relative to the working directory (the code
directory, /kfn/code). It is imported as a module of a package rooted there,
so relative imports work; its own folder, the code directory and the
site-packages of a runtime-env virtualenv in it are on sys.path, so local
packages and vendored dependencies import too.

The response goes to $KFN_RESPONSE_FILE, the status code to
$KFN_STATUS_CODE_FILE and the headers to $KFN_RESPONSE_HEADERS_FILE. A raised
exception, a missing response or code that cannot be loaded exits 1: status
500 with the reason (the traceback) in stderr.
"""

import importlib
import inspect
import json
import os
import re
import sys
import traceback
import types

MISSING_RETURN = "Return statement missing. return context.res.empty() if no response is expected."
MISSING_RESPONSE = "Response missing: the function ended without calling res.send() or res.json()."

HEADER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")

ENV = os.environ
IO_DIR = ENV.get("KFN_IO_DIR") or "/kfn/io"
RESPONSE_FILE = ENV.get("KFN_RESPONSE_FILE") or os.path.join(IO_DIR, "response")
STATUS_CODE_FILE = ENV.get("KFN_STATUS_CODE_FILE") or os.path.join(IO_DIR, "status-code")
HEADERS_FILE = ENV.get("KFN_RESPONSE_HEADERS_FILE") or os.path.join(IO_DIR, "response-headers")

# The streams as the runner gave them; the function may replace sys.stdout.
STDOUT = sys.stdout
STDERR = sys.stderr


class LoadError(Exception):
    """The function's code cannot be loaded: its message is the whole story."""


# ------------------------------------------------------------------ output --


def write_err(text):
    STDERR.write(text if text.endswith("\n") else text + "\n")


def exit_now(code):
    for stream in (sys.stdout, sys.stderr, STDOUT, STDERR):
        try:
            stream.flush()
        except Exception:
            pass
    # No waiting for threads or atexit handlers the function left behind.
    os._exit(code)


def finish(body, status_code, headers):
    """Writes the response and ends the process."""
    code = 0
    try:
        with open(RESPONSE_FILE, "wb") as f:
            f.write(body)
        with open(STATUS_CODE_FILE, "w", encoding="utf-8", errors="replace") as f:
            f.write("%s\n" % (status_code,))
        lines = header_lines(headers)
        if lines:
            with open(HEADERS_FILE, "w", encoding="utf-8", errors="replace") as f:
                f.write(lines)
    except OSError as e:
        write_err("kfn: cannot write the response: %s" % e)
        code = 1
    exit_now(code)


def fail(reason):
    """Ends the process as a failed execution: status 500, reason in stderr."""
    if reason:
        write_err(reason)
    exit_now(1)


def header_lines(headers):
    """Renders headers as the runner reads them, leaving out (with a line in
    stderr) a name the runner would refuse, as it then drops every header."""
    out = []
    for name, value in (headers or {}).items():
        name = str(name)
        if not HEADER_NAME.match(name):
            write_err("kfn: response header %s left out: a name holds letters, digits and inner hyphens." % json.dumps(name))
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        # The runner refuses control characters (a line break would split
        # the header): each run of them becomes a space.
        value = CONTROL.sub(" ", "" if value is None else str(value))
        out.append("%s: %s\n" % (name, value))
    return "".join(out)


def to_bytes(body):
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    return str(body).encode("utf-8", errors="replace")


def traceback_of(e):
    """The traceback of e, without the wrapper's own frames at its top."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def format_messages(messages):
    """Log arguments as Appwrite's runtimes render them: lists, dicts and
    tuples as JSON, the rest as str, joined with spaces."""
    parts = []
    for m in messages:
        if isinstance(m, (list, dict, tuple)):
            try:
                parts.append(json.dumps(m, separators=(",", ":"), default=str))
                continue
            except Exception:
                pass
        parts.append(str(m))
    return " ".join(parts)


# ------------------------------------------------------------------- input --


def request_body():
    path = ENV.get("KFN_REQUEST_FILE")
    if path:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            pass
    return ENV.get("APPWRITE_FUNCTION_DATA", "").encode("utf-8")


def request_headers():
    """The execution's headers, names lower-cased, without the open-runtimes
    transport headers."""
    try:
        raw = json.loads(ENV.get("KFN_REQUEST_HEADERS") or "{}") or {}
        if not isinstance(raw, dict):
            raise ValueError
    except ValueError:
        write_err("kfn: KFN_REQUEST_HEADERS is not a JSON object; the request has no headers.")
        raw = {}
    headers = {}
    for name, value in raw.items():
        lower = str(name).lower()
        if not lower.startswith("x-open-runtimes-"):
            headers[lower] = "" if value is None else str(value)
    return headers


SYSTEM_NAMES = {"PATH", "HOME", "HOSTNAME", "PWD", "OLDPWD", "SHLVL", "TERM", "LANG", "LANGUAGE",
                "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "_"}
SYSTEM_PREFIXES = ("KFN_", "APPWRITE_", "OPEN_RUNTIMES_", "KUBERNETES_", "NODE_", "PYTHON", "LC_", "npm_")


def function_variables(body_text):
    """Appwrite 1.0's req.variables: the function's own variables (named in
    KFN_FUNCTION_VARIABLES, or else every variable that is not the pod's)
    plus every APPWRITE_FUNCTION_* value."""
    listed = ENV.get("KFN_FUNCTION_VARIABLES")
    if listed is not None:
        names = [n.strip() for n in listed.split(",") if n.strip()]
    else:
        names = [n for n in ENV if n not in SYSTEM_NAMES and not n.startswith(SYSTEM_PREFIXES)]
    variables = {n: ENV[n] for n in names if n in ENV}
    variables.update({n: v for n, v in ENV.items() if n.startswith("APPWRITE_FUNCTION_")})
    # A large body is not in the environment; Appwrite's DATA is the body.
    variables["APPWRITE_FUNCTION_DATA"] = body_text
    return variables


# -------------------------------------------------------------------- load --


def load_main(entrypoint, package):
    """Imports the entrypoint as a module of `package` (the code directory)
    and returns its main function."""
    code_dir = os.getcwd()
    path = os.path.normpath(os.path.join(code_dir, entrypoint))
    if not os.path.isfile(path):
        raise LoadError("Failed to load entrypoint, file %s does not exist." % entrypoint)

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    entry_dir = os.path.dirname(path)
    for d in reversed([entry_dir] if entry_dir == code_dir else [entry_dir, code_dir]):
        sys.path.insert(0, d)
    # Dependencies installed the Appwrite way: a runtime-env virtualenv.
    lib = os.path.join(code_dir, "runtime-env", "lib")
    if os.path.isdir(lib):
        import site

        for name in sorted(os.listdir(lib)):
            site_packages = os.path.join(lib, name, "site-packages")
            if name.startswith("python") and os.path.isdir(site_packages):
                site.addsitedir(site_packages)

    rel = os.path.relpath(path, code_dir)
    parts = rel[:-3].split(os.sep) if rel.endswith(".py") else None
    if parts and not rel.startswith("..") and all(p and "." not in p for p in parts):
        # A package rooted at the code directory, as open-runtimes does, so
        # that `from . import x` works; sub-folders are namespace packages.
        root = types.ModuleType(package)
        root.__path__ = [code_dir]
        root.__package__ = package
        sys.modules[package] = root
        module = importlib.import_module(".".join([package] + parts))
    else:
        from importlib import util

        spec = util.spec_from_file_location("__kfn_function__", path)
        module = util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)

    main_fn = getattr(module, "main", None)
    if not callable(main_fn):
        raise LoadError("Function signature invalid. Did you forget to export a 'main' function?")
    return main_fn


def call(fn, *args):
    """Calls fn, running it to completion if it is a coroutine function."""
    result = fn(*args)
    if inspect.isawaitable(result):
        import asyncio

        async def wait():
            return await result

        result = asyncio.run(wait())
    return result


# ---------------------------------------------------------------------- v4 --


class Request:
    """context.req of Appwrite 1.4+."""

    def __init__(self, body, headers):
        self.body_binary = body
        self.headers = headers
        self.method = ENV.get("KFN_REQUEST_METHOD") or "POST"
        full = ENV.get("KFN_REQUEST_PATH") or "/"
        path, _, self.query_string = full.partition("?")
        self.path = path if path.startswith("/") else "/" + path
        self.query = {}
        for param in self.query_string.split("&"):
            key, _, value = param.partition("=")
            if key:
                self.query[key] = value
        self.scheme = headers.get("x-forwarded-proto") or "http"
        default_port = 443 if self.scheme == "https" else 80
        host = headers.get("host") or "localhost"
        name, colon, port = host.rpartition(":")
        if colon and not host.endswith("]") and port.isdigit():
            self.host, self.port = name, int(port)
        else:
            self.host, self.port = host, default_port
        self.url = "%s://%s%s%s%s" % (
            self.scheme,
            self.host,
            "" if self.port == default_port else ":%d" % self.port,
            self.path,
            "?" + self.query_string if self.query_string else "",
        )

    @property
    def body_text(self):
        return self.body_binary.decode("utf-8")

    @property
    def body_raw(self):
        return self.body_text

    @property
    def body_json(self):
        return json.loads(self.body_text)

    @property
    def body(self):
        """body_json for a JSON request ({} when empty), else body_text."""
        if self.headers.get("content-type", "text/plain").lower().startswith("application/json"):
            return self.body_json if len(self.body_binary) > 0 else {}
        return self.body_text


class Response:
    """context.res of Appwrite 1.4+: each method returns the response."""

    def binary(self, bytes, statusCode=200, headers=None):
        return {"body": bytes, "statusCode": statusCode, "headers": dict(headers or {})}

    def text(self, body, statusCode=200, headers=None):
        return self.binary(str(body).encode("utf-8", errors="replace"), statusCode, headers)

    def send(self, body, statusCode=200, headers=None):
        return {"body": body, "statusCode": statusCode, "headers": dict(headers or {})}

    def json(self, obj, statusCode=200, headers=None):
        headers = dict(headers or {})
        headers["content-type"] = "application/json"
        return self.text(json.dumps(obj, separators=(",", ":")), statusCode, headers)

    def empty(self):
        return self.text("", 204, {})

    def redirect(self, url, statusCode=301, headers=None):
        headers = dict(headers or {})
        headers["location"] = url
        return self.text("", statusCode, headers)


class Context:
    def __init__(self, req):
        self.req = req
        self.res = Response()

    def log(self, *messages):
        STDOUT.write(format_messages(messages) + "\n")

    def error(self, *messages):
        STDERR.write(format_messages(messages) + "\n")


def run_v4(entrypoint):
    headers = request_headers()
    # What Appwrite 1.4+ tells a function in headers; callers cannot set these.
    headers["x-appwrite-trigger"] = ENV.get("APPWRITE_FUNCTION_TRIGGER") or "http"
    if ENV.get("APPWRITE_FUNCTION_EVENT"):
        headers["x-appwrite-event"] = ENV["APPWRITE_FUNCTION_EVENT"]
    headers["x-appwrite-user-id"] = ENV.get("APPWRITE_FUNCTION_USER_ID", "")
    headers["x-appwrite-user-jwt"] = ENV.get("APPWRITE_FUNCTION_JWT", "")
    if ENV.get("APPWRITE_FUNCTION_EXECUTION_ID"):
        headers["x-appwrite-execution-id"] = ENV["APPWRITE_FUNCTION_EXECUTION_ID"]
    context = Context(Request(request_body(), headers))

    # As in Appwrite 1.4+, native output (print, sys.stderr) is a log.
    sys.stderr = sys.stdout
    try:
        output = call(load_main(entrypoint, "function"), context)
    finally:
        sys.stderr = STDERR
    if output is None:
        fail(MISSING_RETURN)
    if not isinstance(output, dict):
        fail("The function returned a %s, not a response: return context.res.send(...), "
             "context.res.json(...) or context.res.empty()." % type(output).__name__)
    headers = {}
    for name, value in (output.get("headers") or {}).items():
        lower = str(name).lower()
        if not lower.startswith("x-open-runtimes-"):
            headers[lower] = value
    content_type = str(headers.get("content-type", "text/plain")).lower()
    if not content_type.startswith("multipart/") and "charset=" not in content_type:
        content_type += "; charset=utf-8"
    headers["content-type"] = content_type
    status = output.get("statusCode")
    finish(to_bytes(output.get("body")), 200 if status is None else status, headers)


# ---------------------------------------------------------------------- v2 --


class V2Request:
    """req of Appwrite 1.0: payload, variables (also env) and headers."""

    def __init__(self, payload, variables, headers):
        self.payload = payload
        self.variables = variables
        self.env = variables  # the name before Appwrite 1.0
        self.headers = headers


class V2Response:
    """res of Appwrite 1.0: the first send or json is the response."""

    def __init__(self):
        self.response = None

    def _answer(self, body, status):
        if self.response is not None:
            write_err("kfn: the response was already sent; this one is ignored.")
        else:
            self.response = (body, status)
        return self.response

    def send(self, text, status=200):
        if isinstance(text, (dict, list, tuple)):
            text = json.dumps(text, separators=(",", ":"))
        return self._answer(to_bytes(text), status)

    def json(self, obj, status=200):
        return self._answer(json.dumps(obj, separators=(",", ":")).encode("utf-8"), status)


def run_v2(entrypoint):
    body = request_body()
    text = body.decode("utf-8", errors="replace")
    req = V2Request(text, function_variables(text), request_headers())
    res = V2Response()
    try:
        call(load_main(entrypoint, "userlib"), req, res)
    except Exception as e:
        if res.response is None:
            raise
        write_err(traceback_of(e))  # the response was sent: it stands
    if res.response is None:
        fail(MISSING_RESPONSE)
    finish(res.response[0], res.response[1], {})


# -------------------------------------------------------------------- main --


def main():
    # Line by line, so that logs written before a timeout are kept.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    if not ENV.get("APPWRITE_FUNCTION_RUNTIME_VERSION"):
        ENV["APPWRITE_FUNCTION_RUNTIME_VERSION"] = "%d.%d" % sys.version_info[:2]
    contract = (ENV.get("KFN_FUNCTION_CONTRACT") or "").strip().lower() or "v4"
    entrypoint = sys.argv[1] if len(sys.argv) > 1 else "main.py"
    if contract == "v2":
        run = run_v2
    elif contract in ("v3", "v4", "v5"):
        run = run_v4
    else:
        fail("kfn: unknown KFN_FUNCTION_CONTRACT %s: want v2 or v4." % json.dumps(contract))
    try:
        run(entrypoint)
    except LoadError as e:
        fail(str(e))
    except Exception as e:
        fail(traceback_of(e))


if __name__ == "__main__":
    main()
