"""Sous's runtime for python3.11 functions.

Speaks the Lambda Runtime API (over the pipes named by _SOUS_RUNTIME_API_PIPES) and runs the handler named by
_HANDLER the way Lambda's Python runtime does: the handler module is imported once, at init
(init failures are posted to /runtime/init/error with Lambda's error types, then the process
exits); each event is decoded from JSON and passed with a context object; the result is
encoded to JSON (Decimal as a number) and posted; an exception is posted as
{errorMessage, errorType, requestId, stackTrace} and logged as one record. The root logger
gets Lambda's handler and format. Log records go to the framed telemetry pipe named by
_LAMBDA_TELEMETRY_LOG_FD (one frame = one log event), print() output to stdout.

Start-up cost matters (it is most of a cold start), so only built-in modules are imported
up front: the HTTP client reads and writes its pipes with os, JSON uses _json directly, and `logging`,
`traceback` and `decimal` are touched only when the function itself uses them.
"""

import os
import sys
import time

import _json

_RUNTIME_FILES = (__file__, os.path.join(os.path.dirname(__file__), "bootstrap.py"))

# ---------------------------------------------------------------------------------------
# Errors


class _Fault(Exception):
    """An error of the runtime itself (Lambda's `Runtime.*` types)."""

    MARSHAL = "Runtime.MarshalError"
    UNMARSHAL = "Runtime.UnmarshalError"
    SYNTAX = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE = "Runtime.ImportModuleError"
    BUILT_IN_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER = "Runtime.MalformedHandlerName"
    CONTEXT_UNMARSHAL = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


def _error_body(message, error_type, trace, request_id):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": trace or [],
    }


def _exception_body(exc, request_id):
    """The error body for an exception raised by user code: its frames, ours left out."""
    import traceback

    frames = [
        (f.filename, f.lineno, f.name, f.line)
        for f in traceback.extract_tb(exc.__traceback__)
    ]
    while frames and frames[0][0] in _RUNTIME_FILES:
        del frames[0]
    return _error_body(
        str(exc), type(exc).__name__, traceback.format_list(frames), request_id
    )


# ---------------------------------------------------------------------------------------
# JSON, as the runtime's marshaller does it (stdlib json semantics, Decimal as a number)

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo = {}


_scan = _json.make_scanner(_ScanContext())
_WS = " \t\n\r"


def _loads(data):
    """json.loads, without importing json unless the input is bad (for its error)."""
    if isinstance(data, (bytes, bytearray)):
        if data[:3] == b"\xef\xbb\xbf":
            text = data.decode("utf-8-sig")
        else:
            text = data.decode("utf-8", "surrogatepass")
    else:
        text = data
    n = len(text)
    i = 0
    while i < n and text[i] in _WS:
        i += 1
    try:
        obj, end = _scan(text, i)
    except Exception:  # StopIteration, or the scanner's own error: json says it better
        end = -1
    if end >= 0:
        while end < n and text[end] in _WS:
            end += 1
    if end != n:
        import json

        return json.loads(text)  # raises the JSONDecodeError json would
    return obj


class _DecimalMarks:
    """Decimals found while encoding, each replaced by a unique string then by its digits."""

    def __init__(self):
        self.nonce = os.urandom(8).hex()
        self.values = []

    def mark(self, d):
        self.values.append(str(d))
        return "\x00%s%d\x00" % (self.nonce, len(self.values) - 1)

    def apply(self, text):
        for i, v in enumerate(self.values):
            text = text.replace('"\\u0000%s%d\\u0000"' % (self.nonce, i), v)
        return text


def _dumps(obj):
    """json.dumps(obj), with decimal.Decimal written as a JSON number (NaN for NaNs)."""
    marks = None

    def default(o):
        nonlocal marks
        dec = sys.modules.get("decimal")
        if dec is not None and isinstance(o, dec.Decimal):
            if o.is_nan():
                return float("nan")
            if marks is None:
                marks = _DecimalMarks()
            return marks.mark(o)
        raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    encode = _json.make_encoder(
        {}, default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    text = "".join(encode(obj, 0))
    return marks.apply(text) if marks is not None else text


# ---------------------------------------------------------------------------------------
# Log sink: framed records on the telemetry fd, or stdout when there is none

_TEXT_FRAME = 0xA55A0003
_JSON_FRAME = 0xA55A0002
# Per level (NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL): text and JSON frame types.
_TEXT_LEVEL_FRAMES = {0: 0xA55A0003, 10: 0xA55A000B, 20: 0xA55A000F, 30: 0xA55A0013,
                      40: 0xA55A0017, 50: 0xA55A001B}
_JSON_LEVEL_FRAMES = {0: 0xA55A0002, 10: 0xA55A000A, 20: 0xA55A000E, 30: 0xA55A0012,
                      40: 0xA55A0016, 50: 0xA55A001A}

_LOG_FORMAT_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
_LOG_LEVEL = {None: "", "TRACE": "DEBUG"}.get(
    os.environ.get("AWS_LAMBDA_LOG_LEVEL"), os.environ.get("AWS_LAMBDA_LOG_LEVEL") or ""
).upper()


class _FramedSink:
    def __init__(self, fd):
        self.fd = fd

    def log(self, msg, frame_type=None):
        data = msg.encode("utf-8", "backslashreplace")
        frame = (
            (frame_type or _TEXT_FRAME).to_bytes(4, "big")
            + len(data).to_bytes(4, "big")
            + (time.time_ns() // 1000).to_bytes(8, "big")
            + data
        )
        view = memoryview(frame)
        while view:
            view = view[os.write(self.fd, view):]

    def log_error(self, lines, frame_type):
        self.log("\n".join(lines), frame_type)


class _StdoutSink:
    def log(self, msg, frame_type=None):
        sys.stdout.write(msg)

    def log_error(self, lines, frame_type):
        sys.stdout.write("\r".join(lines) + "\n")


def _make_sink():
    fd = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is not None:
        try:
            fd = int(fd)
            os.set_inheritable(fd, False)
            return _FramedSink(fd)
        except (ValueError, OSError):
            pass
    return _StdoutSink()


_sink = None
_request_id = None
_tenant_id = None


def _log_error(body):
    """Write an error body to the function's log as Lambda does: one record."""
    if _LOG_FORMAT_JSON:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        record = {"timestamp": stamp, "level": "ERROR"}
        record.update(body)
        _sink.log_error([_dumps(record)], _JSON_LEVEL_FRAMES[40])
        return
    head = "[ERROR]"
    if body.get("errorType"):
        head += " " + body["errorType"]
    if body.get("errorMessage"):
        if body.get("errorType"):
            head += ":"
        head += " " + body["errorMessage"]
    lines = [head]
    trace = body.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    _sink.log_error(lines, _TEXT_LEVEL_FRAMES[40])


# ---------------------------------------------------------------------------------------
# The root logger, set up as Lambda sets it up, as soon as `logging` is imported


def _setup_logging(logging):
    logging.Formatter.converter = time.gmtime
    sink = _sink
    typed = _LOG_FORMAT_JSON or bool(_LOG_LEVEL)
    frames = _JSON_LEVEL_FRAMES if _LOG_FORMAT_JSON else _TEXT_LEVEL_FRAMES

    class LambdaLoggerHandler(logging.Handler):
        def __init__(self):
            super().__init__()
            self.log_sink = sink

        def emit(self, record):
            msg = self.format(record)
            frame = None
            if typed:
                frame = getattr(record, "_frame_type", None) or frames.get(
                    min(50, max(0, record.levelno)) // 10 * 10
                )
            sink.log(msg, frame)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _request_id or ""
            record.tenant_id = _tenant_id
            return True

    handler = LambdaLoggerHandler()
    if _LOG_FORMAT_JSON:
        handler.setFormatter(_json_formatter(logging))
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    root = logging.getLogger()
    if _LOG_LEVEL in logging._nameToLevel:
        root.setLevel(_LOG_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


_RESERVED_RECORD_FIELDS = frozenset(
    "name msg args levelname levelno pathname filename module exc_info exc_text stack_info "
    "lineno funcName created msecs relativeCreated thread threadName processName process "
    "aws_request_id tenant_id _frame_type taskName".split()
)


def _json_formatter(logging):
    import json
    import traceback
    from datetime import datetime, timezone

    encode = json.JSONEncoder(ensure_ascii=False).encode

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            level = min(50, max(0, record.levelno)) // 10 * 10
            record.levelno = level
            record.levelname = logging.getLevelName(level)
            record._frame_type = _JSON_LEVEL_FRAMES.get(level, _JSON_FRAME)
            stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
            exc = record.exc_info
            out = {
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc[2]) if exc else None,
                "errorType": exc[0].__name__ if exc else None,
                "errorMessage": str(exc[1]) if exc else None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": (
                    f"{record.pathname}:{record.funcName}:{record.lineno}" if exc else None
                ),
            }
            if getattr(record, "tenant_id", None) is not None:
                out["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_RECORD_FIELDS and key not in out:
                    out[key] = value
            return encode({k: v for k, v in out.items() if v is not None}) + "\n"

    return JsonFormatter()


class _LoggingImportHook:
    """A meta path finder that sets up the root logger right after `logging` is imported."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(cls)
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is not None:
                spec = find(name, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _ConfiguringLoader(spec.loader)
        return spec


class _ConfiguringLoader:
    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _setup_logging(module)


def _install_logging():
    logging = sys.modules.get("logging")
    if logging is not None:
        _setup_logging(logging)
    else:
        sys.meta_path.insert(0, _LoggingImportHook)


_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function "
    "code. However, in rare cases, a Lambda runtime update can cause unexpected function "
    "behavior. For functions using managed runtimes, runtime updates can be triggered by a "
    "function change, or can be applied automatically. To determine if the runtime has been "
    "updated, check the runtime version in the INIT_START log entry. If this error correlates "
    "with a change in the runtime version, you may be able to mitigate this error by "
    "temporarily rolling back to the previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)


# ---------------------------------------------------------------------------------------
# Runtime API client: HTTP/1.1 over the pair of pipes Sous gives its managed runtimes
# (_SOUS_RUNTIME_API_PIPES: the descriptor to read answers from, the one to write requests
# to), with blocking reads and writes.


class _RuntimeApi:
    def __init__(self, address, pipes):
        self.host_header = address
        answers, _, requests = pipes.partition(",")
        if not (answers.isdigit() and requests.isdigit()):
            sys.stderr.write("Sous runtime: started without the Runtime API pipes\n")
            sys.exit(1)
        self.rfd = int(answers)
        self.wfd = int(requests)
        for fd in (self.rfd, self.wfd):
            os.set_inheritable(fd, False)  # not the function's child processes' business
        self.buf = b""

    def request(self, method, path, body=None, headers=()):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.host_header)
        for name, value in headers:
            head += "%s: %s\r\n" % (name, value)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        data = memoryview((head + "\r\n").encode("latin-1", "replace") + (body or b""))
        while data:
            data = data[os.write(self.wfd, data) :]
        return self._response()

    def _recv(self):
        chunk = os.read(self.rfd, 262144)
        if not chunk:
            raise ConnectionError("the Runtime API closed the connection")
        return chunk

    def _response(self):
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            buf += self._recv()
            end = buf.find(b"\r\n\r\n")
        lines = buf[:end].decode("utf-8", "replace").split("\r\n")
        buf = buf[end + 4 :]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        if length is not None:
            n = int(length)
            if len(buf) < n:
                parts = [buf]
                have = len(buf)
                while have < n:
                    chunk = self._recv()
                    parts.append(chunk)
                    have += len(chunk)
                buf = b"".join(parts)
            body, self.buf = buf[:n], buf[n:]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body, self.buf = self._chunked(buf)
        else:
            parts = [buf]
            try:
                while True:
                    parts.append(self._recv())
            except ConnectionError:
                pass
            body = b"".join(parts)
        return status, headers, body

    def _chunked(self, buf):
        out = []
        while True:
            end = buf.find(b"\r\n")
            while end < 0:
                buf += self._recv()
                end = buf.find(b"\r\n")
            size = int(buf[:end].split(b";")[0], 16)
            buf = buf[end + 2 :]
            if size == 0:
                # Trailers (if any) end with an empty line.
                end = buf.find(b"\r\n")
                while True:
                    while end < 0:
                        buf += self._recv()
                        end = buf.find(b"\r\n")
                    if end == 0:
                        return b"".join(out), buf[2:]
                    buf = buf[end + 2 :]
                    end = buf.find(b"\r\n")
            while len(buf) < size + 2:
                buf += self._recv()
            out.append(buf[:size])
            buf = buf[size + 2 :]

    def next(self):
        status, headers, body = self.request("GET", "/2018-06-01/runtime/invocation/next")
        if status != 200:
            raise RuntimeError(
                "Failed to get next invocation: %d %s" % (status, body.decode("utf-8", "replace"))
            )
        return headers, body

    def post_response(self, request_id, payload, content_type):
        self._post(
            "/2018-06-01/runtime/invocation/%s/response" % request_id,
            payload,
            (("Content-Type", content_type),),
        )

    def post_error(self, request_id, body):
        self._post(
            "/2018-06-01/runtime/invocation/%s/error" % request_id,
            _dumps(body).encode("utf-8"),
            (
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Function-Error-Type", body["errorType"]),
            ),
        )

    def post_init_error(self, body):
        self._post(
            "/2018-06-01/runtime/init/error",
            _dumps(body).encode("utf-8"),
            (
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Function-Error-Type", body["errorType"]),
            ),
        )

    def _post(self, path, payload, headers):
        status, _, body = self.request("POST", path, payload, headers)
        if status >= 500:
            # The environment is going away; Lambda's runtimes exit here.
            raise RuntimeError(
                "Request to Lambda Runtime '%s' endpoint failed. Reason: '%d'. Response body: '%s'"
                % (path, status, body.decode("utf-8", "replace"))
            )


# ---------------------------------------------------------------------------------------
# The context object


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client:
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"custom={self.custom},"
            f"env={self.env},"
            f"client={self.client}"
            "])"
        )


def _from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field) if isinstance(values, dict) else None)
    return obj


_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        env = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        w3c = {}
        if isinstance(client_context, dict) and "w3c" in client_context:
            raw = client_context.pop("w3c")
            if isinstance(raw, dict):
                w3c = {k: raw[k] for k in _W3C_FIELDS if isinstance(raw.get(k), str)}
        self._w3c_fields = w3c
        self.client_context = _from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)
        self.identity = _from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get(
                "cognitoIdentityPoolId"
            )
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        remaining = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def w3c(self):
        return dict(self._w3c_fields)

    def log(self, msg):
        _sink.log(str(msg))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


def _json_header(value, what):
    if not value:
        return None
    try:
        return _loads(value)
    except Exception as e:
        raise _Fault(_Fault.CONTEXT_UNMARSHAL, "Unable to parse %s JSON: %s" % (what, e))


# ---------------------------------------------------------------------------------------
# Handler resolution


def _load_handler(handler):
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as e:
        raise _Fault(_Fault.MALFORMED_HANDLER, "Bad handler '%s': %s" % (handler, e))
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise _Fault(
                _Fault.BUILT_IN_CONFLICT,
                "Cannot use built-in module %s as a handler module" % module_name,
            )
        import importlib

        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise _Fault(
            _Fault.IMPORT_MODULE, "Unable to import module '%s': %s" % (module_name, e)
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise _Fault(_Fault.SYNTAX, "Syntax error in module '%s': %s" % (module_name, e), trace)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault(
            _Fault.HANDLER_NOT_FOUND,
            "Handler '%s' missing on module '%s'" % (function_name, module_name),
        )


# ---------------------------------------------------------------------------------------
# Main loop


def _marshal(result):
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return _dumps(result).encode("utf-8"), "application/json"
    except Exception as e:
        raise _Fault(_Fault.MARSHAL, "Unable to marshal response: %s" % e)


def _invoke(api, handler, headers, body):
    global _request_id, _tenant_id
    request_id = headers.get("lambda-runtime-aws-request-id", "")
    _request_id = request_id
    _tenant_id = headers.get("lambda-runtime-aws-tenant-id") or None
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    error = None
    try:
        deadline = int(headers.get("lambda-runtime-deadline-ms") or 0)
        context = LambdaContext(
            request_id,
            _json_header(headers.get("lambda-runtime-client-context"), "Client Context"),
            _json_header(headers.get("lambda-runtime-cognito-identity"), "Cognito Identity"),
            deadline,
            headers.get("lambda-runtime-invoked-function-arn"),
            _tenant_id,
        )
        content_type = headers.get("content-type") or "application/json"
        if content_type == "application/json":
            try:
                event = _loads(body)
            except Exception as e:
                raise _Fault(_Fault.UNMARSHAL, "Unable to unmarshal input: %s" % e)
        else:
            event = body
        payload, payload_type = _marshal(handler(event, context))
    except _Fault as f:
        error = _error_body(f.message, f.error_type, f.trace, request_id)
    except Exception as e:
        error = _exception_body(e, request_id)
    if error is not None:
        _log_error(error)
        api.post_error(request_id, error)
    else:
        api.post_response(request_id, payload, payload_type)


def _add_runtime_dir():
    """Lambda's sys.path: the task root, the layers' paths (PYTHONPATH), the runtime
    directory (where the bundled boto3 is), then the standard library."""
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR")
    if not runtime_dir or runtime_dir in sys.path:
        return
    at = 1
    for p in os.environ.get("PYTHONPATH", "").split(":"):
        if p and p in sys.path:
            at = max(at, sys.path.index(p) + 1)
    sys.path.insert(at, runtime_dir)


def main():
    global _sink
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # The script's directory (ours) gives way to the function's code.
    if sys.path and os.path.dirname(__file__) == sys.path[0]:
        sys.path[0] = task_root
    else:
        sys.path.insert(0, task_root)
    _add_runtime_dir()
    _sink = _make_sink()
    _install_logging()
    api = _RuntimeApi(
        os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        os.environ.pop("_SOUS_RUNTIME_API_PIPES", ""),
    )

    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        if isinstance(e, _Fault):
            error = _error_body(e.message, e.error_type, e.trace, None)
        else:
            error = _exception_body(e, None)
        import logging

        logging.warning(_UNHANDLED_WARNING)
        _log_error(error)
        api.post_init_error(error)
        sys.exit(1)

    while True:
        headers, body = api.next()
        _invoke(api, handler, headers, body)
