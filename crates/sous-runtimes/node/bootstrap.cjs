'use strict';
// Sous's runtime for `nodejs20.x`: run under Node.js 20 with the function's code directory as
// the working directory and Lambda's environment variables set. It loads the handler named by
// `_HANDLER` once, then loops on the Runtime API (`/next`, `/response`, `/error`), giving the
// handler Lambda's event, context object and callback, and Lambda's console, error and
// process-level behaviour. Plain JavaScript with no dependencies beyond Node's own modules,
// kept small because every line of it is part of each cold start.

const fs = require('fs');
const path = require('path');
const util = require('util');

const env = process.env;
const TASK_ROOT = path.resolve(env.LAMBDA_TASK_ROOT || process.cwd());
const RUNTIME_DIR = path.resolve(env.LAMBDA_RUNTIME_DIR || __dirname);
const PREFIX = '/2018-06-01/runtime';

// ---------------------------------------------------------------------------------------------
// Module search path: as Lambda's bootstrap, only when the function did not set its own.

if (!env.NODE_PATH) {
  env.NODE_PATH = [
    '/opt/nodejs/node20/node_modules',
    '/opt/nodejs/node_modules',
    path.join(RUNTIME_DIR, 'node_modules'),
    RUNTIME_DIR,
    TASK_ROOT,
  ].join(':');
  module.constructor._initPaths(); // `module.constructor` is Module, without loading 'module'
}

// `global.gc`, as Lambda's `--expose-gc` gives it, made on first use: starting node with a V8
// flag changed makes it discard its built-in code cache, which costs more than all the rest of
// this file at every cold start.

Object.defineProperty(globalThis, 'gc', {
  configurable: true,
  enumerable: false,
  get() {
    require('v8').setFlagsFromString('--expose-gc');
    const gc = require('vm').runInNewContext('gc');
    Object.defineProperty(globalThis, 'gc', { value: gc, writable: true, configurable: true });
    return gc;
  },
  set(value) {
    Object.defineProperty(globalThis, 'gc', { value, writable: true, configurable: true });
  },
});

// ---------------------------------------------------------------------------------------------
// Errors the runtime reports. The names are what callers see as `errorType`.

function runtimeError(name) {
  const cls = class extends Error {};
  Object.defineProperty(cls.prototype, 'name', {
    value: 'Runtime.' + name,
    writable: true,
    configurable: true,
  });
  return cls;
}

const ImportModuleError = runtimeError('ImportModuleError');
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const NodeJsExit = runtimeError('NodeJsExit');
const UnhandledPromiseRejection = runtimeError('UnhandledPromiseRejection');

const NODE_EXIT_MESSAGE =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly ' +
  'caused by a Promise that was never settled. For more information, see ' +
  'https://nodejs.org/docs/latest/api/process.html#exit-codes';

function rejectionError(reason, promise) {
  const e = new UnhandledPromiseRejection(reason);
  e.reason = reason;
  e.promise = promise;
  return e;
}

function looksLikeError(v) {
  return (
    v &&
    typeof v.name === 'string' &&
    typeof v.message === 'string' &&
    typeof v.stack === 'string' &&
    v.name &&
    v.message &&
    v.stack
  );
}

const DEL = /\x7F/g;

// The body posted to `/error` and `/init/error`: Node.js's shape (`trace`, not `stackTrace`).
function errorBody(err) {
  try {
    if (util.types.isNativeError(err) || looksLikeError(err)) {
      return {
        errorType: String(err.name).replace(DEL, '%7F'),
        errorMessage: String(err.message).replace(DEL, '%7F'),
        trace: String(err.stack).replace(DEL, '%7F').split('\n'),
      };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// Errors in the log: name, message, code and own enumerable properties, stack as lines.
function errorForLog(_key, v) {
  if (!(v instanceof Error)) {
    return v;
  }
  const out = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
  if (typeof v.stack === 'string') {
    out.stack = v.stack.split('\n');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Logging: console.* calls become one record each, prefixed as Lambda prefixes them, written as
// frames on the telemetry fd when the platform gives one (so multi-line messages stay one log
// event), else as lines on stdout with newlines turned into carriage returns.

let requestId; // the current invocation's id; `undefined` during init, as on Lambda
const JSON_FORMAT = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const FRAME_TEXT = 0xa55a0003;
const FRAME_JSON = 0xa55a0002;

function jsonRecord(time, level, args) {
  const rec = { timestamp: time, level, requestId };
  if (args.length === 1) {
    rec.message = args[0];
    try {
      return JSON.stringify(rec, (k, v) =>
        v instanceof Error
          ? Object.assign(
              {
                errorType: (v.constructor && v.constructor.name) || 'UnknownError',
                errorMessage: v.message,
                stackTrace: typeof v.stack === 'string' ? v.stack.split('\n') : v.stack,
              },
              v,
            )
          : v,
      );
    } catch (_) {
      rec.message = util.format(rec.message);
      return JSON.stringify(rec);
    }
  }
  rec.message = util.format(...args);
  const err = args.find((a) => a instanceof Error);
  if (err) {
    rec.errorType = (err.constructor && err.constructor.name) || 'UnknownError';
    rec.errorMessage = err.message;
    rec.stackTrace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
  }
  return JSON.stringify(rec);
}

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') {
        throw e;
      }
    }
  }
}

function makeLogger() {
  const fdText = env._LAMBDA_TELEMETRY_LOG_FD;
  delete env._LAMBDA_TELEMETRY_LOG_FD;
  const fd = fdText ? parseInt(fdText, 10) : NaN;
  const format = (now, level, args) =>
    JSON_FORMAT
      ? jsonRecord(now.toISOString(), level, args)
      : `${now.toISOString()}\t${requestId}\t${level}\t${util.format(...args)}`;
  if (Number.isInteger(fd) && fd >= 0) {
    const type = JSON_FORMAT ? FRAME_JSON : FRAME_TEXT;
    return (level, args) => {
      const now = new Date();
      const msg = format(now, level, args) + '\n';
      const len = Buffer.byteLength(msg);
      const buf = Buffer.allocUnsafe(16 + len);
      const micros = now.getTime() * 1000;
      buf.writeUInt32BE(type, 0);
      buf.writeUInt32BE(len, 4);
      buf.writeUInt32BE(Math.floor(micros / 0x100000000), 8);
      buf.writeUInt32BE(micros % 0x100000000, 12);
      buf.write(msg, 16, 'utf8');
      writeAll(fd, buf);
    };
  }
  return (level, args) => {
    process.stdout.write(format(new Date(), level, args).replace(/\n/g, '\r') + '\n');
  };
}

const log = makeLogger();

function patchConsole() {
  const min = LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const at = (level) => (LEVELS[level] >= min ? (...args) => log(level, args) : () => {});
  console.trace = at('TRACE');
  console.debug = at('DEBUG');
  console.info = at('INFO');
  console.log = console.info;
  console.warn = at('WARN');
  console.error = at('ERROR');
  console.fatal = (...args) => log('FATAL', args);
}

function logError(what, err) {
  if (JSON_FORMAT) {
    log('ERROR', [intoError(err)]);
    return;
  }
  let text;
  try {
    text = '\t' + JSON.stringify(intoError(err), errorForLog);
  } catch (_) {
    text = '\t' + JSON.stringify(errorBody(err));
  }
  log('ERROR', [what, text]);
}

// ---------------------------------------------------------------------------------------------
// The Runtime API client: HTTP/1.1 over the pair of pipes Sous gives its managed runtimes
// (`_SOUS_RUNTIME_API_PIPES`: the descriptor to read answers from, the one to write requests
// to), with blocking reads and writes. Loading `net` and its streams would cost about a quarter
// of a cold start. Blocking in `/next` is what Lambda's freeze is: nothing of the previous
// invocation runs until the next event arrives. Requests are one at a time, so `request` runs
// synchronously and returns a settled promise.

const API_FDS = (() => {
  const text = env._SOUS_RUNTIME_API_PIPES || '';
  delete env._SOUS_RUNTIME_API_PIPES;
  const fds = text.split(',').map((s) => parseInt(s, 10));
  if (fds.length !== 2 || !fds.every((fd) => Number.isInteger(fd) && fd >= 0)) {
    process.stderr.write('Sous runtime: started without the Runtime API pipes\n');
    process.exit(1);
  }
  return fds;
})();

let rbuf = Buffer.allocUnsafe(64 * 1024);
let rlen = 0; // bytes of `rbuf` read but not consumed

// Read more of the answer stream into `rbuf`.
function fill() {
  if (rlen === rbuf.length) {
    const bigger = Buffer.allocUnsafe(rbuf.length * 2);
    rbuf.copy(bigger, 0, 0, rlen);
    rbuf = bigger;
  }
  const n = fs.readSync(API_FDS[0], rbuf, rlen, rbuf.length - rlen, null);
  if (n === 0) {
    throw new Error('Runtime API connection closed');
  }
  rlen += n;
}

// Take the first `n` bytes of `rbuf` (copied out).
function take(n) {
  const out = Buffer.from(rbuf.subarray(0, n));
  rbuf.copy(rbuf, 0, n, rlen);
  rlen -= n;
  return out;
}

function requestSync(method, reqPath, headers, body) {
  let head = `${method} ${reqPath} HTTP/1.1\r\nHost: ${env.AWS_LAMBDA_RUNTIME_API}\r\n`;
  for (const k in headers) {
    head += `${k}: ${headers[k]}\r\n`;
  }
  head += `Content-Length: ${body ? body.length : 0}\r\n\r\n`;
  const headBuf = Buffer.from(head, 'latin1');
  writeAll(API_FDS[1], body ? Buffer.concat([headBuf, body]) : headBuf);

  let end;
  while ((end = rbuf.subarray(0, rlen).indexOf('\r\n\r\n')) < 0) {
    fill();
  }
  const lines = take(end + 4).toString('latin1', 0, end).split('\r\n');
  const status = parseInt(lines[0].slice(9, 12), 10);
  const h = {};
  for (let i = 1; i < lines.length; i++) {
    const j = lines[i].indexOf(':');
    if (j > 0) {
      h[lines[i].slice(0, j).trim().toLowerCase()] = lines[i].slice(j + 1).trim();
    }
  }
  if (/chunked/i.test(h['transfer-encoding'] || '')) {
    return { status, headers: h, body: readChunked() };
  }
  const len = parseInt(h['content-length'] || '0', 10) || 0;
  while (rlen < len) {
    fill();
  }
  return { status, headers: h, body: take(len) };
}

// A chunked body: `size CRLF data CRLF` ... `0 CRLF CRLF` (no trailers from Sous).
function readChunked() {
  const parts = [];
  for (;;) {
    let eol;
    while ((eol = rbuf.subarray(0, rlen).indexOf('\r\n')) < 0) {
      fill();
    }
    const size = parseInt(rbuf.toString('latin1', 0, eol), 16);
    while (rlen < eol + 2 + size + 2) {
      fill();
    }
    take(eol + 2);
    if (size === 0) {
      take(2);
      return Buffer.concat(parts);
    }
    parts.push(take(size));
    take(2);
  }
}

function request(method, reqPath, headers, body) {
  try {
    return Promise.resolve(requestSync(method, reqPath, headers, body));
  } catch (err) {
    return Promise.reject(err);
  }
}

function headerValue(text) {
  return String(text).replace(/[^\x20-\x7e]/g, '');
}

function postJson(reqPath, obj, errorType) {
  const headers = { 'Content-Type': 'application/json' };
  if (errorType !== undefined) {
    headers['Lambda-Runtime-Function-Error-Type'] = headerValue(errorType);
  }
  return request('POST', reqPath, headers, Buffer.from(JSON.stringify(obj), 'utf8'));
}

function serializeResult(result) {
  try {
    return Buffer.from(JSON.stringify(result === undefined ? null : result), 'utf8');
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
}

function postResponse(id, result) {
  const body = serializeResult(result);
  return request(
    'POST',
    `${PREFIX}/invocation/${encodeURIComponent(id)}/response`,
    { 'Content-Type': 'application/json' },
    body,
  );
}

function postError(id, err) {
  const body = errorBody(err);
  return postJson(`${PREFIX}/invocation/${encodeURIComponent(id)}/error`, body, body.errorType);
}

function postInitError(err) {
  const body = errorBody(err);
  return postJson(`${PREFIX}/init/error`, body, body.errorType);
}

// ---------------------------------------------------------------------------------------------
// Loading the handler: `[dir/]module.export[.nested]`, as Lambda resolves it.

function packageTypeIsModule(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) {
      return false;
    }
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
        if (pkg) {
          return pkg.type === 'module';
        }
      } catch (e) {
        console.warn(
          `${pj} cannot be read, it will be ignored for ES module detection purposes.`,
          e,
        );
        return false;
      }
    }
    const up = path.dirname(dir);
    if (up === dir) {
      return false;
    }
    dir = up;
  }
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  if (!fs.existsSync(file)) {
    return undefined;
  }
  return import(require('url').pathToFileURL(file).href);
}

async function loadModule(moduleRoot, name) {
  const base = path.resolve(TASK_ROOT, moduleRoot, name);
  const extensionless = requireIfExists(base);
  if (extensionless) {
    return extensionless;
  }
  const isModule = packageTypeIsModule(path.dirname(base));
  if (!isModule) {
    const cjs = requireIfExists(base + '.js');
    if (cjs) {
      return cjs;
    }
  }
  const found =
    (isModule && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (found) {
    return found;
  }
  // A module name resolved the way `require` resolves it (e.g. a package in node_modules).
  return require(require.resolve(name, { paths: [TASK_ROOT, moduleRoot] }));
}

async function loadHandler(full) {
  if (full.includes('..')) {
    throw new MalformedHandlerName(
      `'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const base = path.basename(full);
  const moduleRoot = full.substring(0, full.indexOf(base));
  const m = /^([^.]*)\.(.*)$/.exec(base);
  if (!m) {
    throw new MalformedHandlerName('Bad handler');
  }
  let mod;
  try {
    mod = await loadModule(moduleRoot, m[1]);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new UserCodeSyntaxError(String(e));
    }
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new ImportModuleError(String(e));
    }
    throw e;
  }
  const fn = m[2].split('.').reduce((o, k) => o && o[k], mod);
  if (!fn) {
    throw new HandlerNotFound(`${full} is undefined or not exported`);
  }
  if (typeof fn !== 'function') {
    throw new HandlerNotFound(`${full} is not a function`);
  }
  return fn;
}

// ---------------------------------------------------------------------------------------------
// Response streaming handlers (`awslambda.streamifyResponse`). The Runtime API of Sous takes
// buffered responses, so a streamed response is collected and posted when the handler is done.

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');

globalThis.awslambda = {
  streamifyResponse(handler) {
    handler[STREAMING] = 'response';
    return handler;
  },
  HttpResponseStream: {
    from(stream, prelude) {
      stream.setContentType('application/vnd.awslambda.http-integration-response');
      stream.write(JSON.stringify(prelude));
      stream.write(Buffer.alloc(8));
      return stream;
    },
  },
};

function responseStream() {
  const { Writable } = require('stream');
  const chunks = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  stream.contentType = 'application/octet-stream';
  stream.setContentType = (t) => {
    stream.contentType = t;
  };
  stream.collected = () => Buffer.concat(chunks);
  return stream;
}

// ---------------------------------------------------------------------------------------------
// The invocation loop.

let handler;
let handlerIsAsync = false;
let exiting = false;
let beforeExit = () => {};
process.on('beforeExit', () => beforeExit());

// What uncaught exceptions and unhandled rejections do: report to init/error before the first
// invocation, to the current invocation afterwards; either way the process then exits, so the
// environment is replaced.
let reportFatal = (err, code) => exitAfter(postInitError(err), code);

function exitAfter(promise, code) {
  promise.then(
    () => process.exit(code),
    () => process.exit(code),
  );
}

process.on('uncaughtException', (err) => {
  if (exiting) {
    return;
  }
  exiting = true;
  logError('Uncaught Exception', err);
  reportFatal(err, 129);
});

process.on('unhandledRejection', (reason, promise) => {
  if (exiting) {
    return;
  }
  exiting = true;
  const err = rejectionError(reason, promise);
  logError('Unhandled Promise Rejection', err);
  reportFatal(err, 128);
});

function scheduleNext() {
  setImmediate(next);
}

function parseHeaderJson(text, what) {
  if (text === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse ${what} as json: ${e.toString()}`);
  }
}

// The callback, and the part of the context that completes the invocation
// (succeed/fail/done, callbackWaitsForEmptyEventLoop). Only the first completion counts.
function completion(id) {
  let waitForEmptyEventLoop = true;
  let completed = false;
  let finished = false;

  const reportError = (err) => {
    logError('Invoke Error', err);
    postError(id, err).then(scheduleNext, fatalClientError);
  };
  const complete = (result) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    postResponse(id, result).then(scheduleNext, fatalClientError);
  };
  const callback = (err, result) => {
    beforeExit = () => {};
    if (err !== undefined && err !== null) {
      reportError(err);
    } else if (!waitForEmptyEventLoop) {
      complete(result);
    } else {
      beforeExit = () => setImmediate(() => complete(result));
    }
  };
  const done = (err, result) => {
    beforeExit = () => {};
    if (err !== undefined && err !== null) {
      reportError(err);
    } else {
      complete(result);
    }
  };
  const once =
    (fn) =>
    (...args) => {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyEventLoop = v;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  // When the event loop empties without the handler having completed.
  const whenLoopEmpties = () => {
    completed = true;
    if (handlerIsAsync) {
      const err = new NodeJsExit(NODE_EXIT_MESSAGE);
      logError('Invoke Error', err);
      postError(id, err).then(scheduleNext, fatalClientError);
    } else {
      postResponse(id, null).then(scheduleNext, fatalClientError);
    }
  };
  return { callback: once(callback), context, whenLoopEmpties };
}

function fatalClientError(err) {
  process.stderr.write(`Runtime API request failed: ${err && err.stack}\n`);
  process.exit(1);
}

async function next() {
  let res;
  try {
    res = await request('GET', `${PREFIX}/invocation/next`, {});
  } catch (err) {
    fatalClientError(err);
    return;
  }
  if (res.status !== 200) {
    process.stderr.write(`Runtime API /next answered ${res.status}: ${res.body}\n`);
    process.exit(1);
  }
  const h = res.headers;
  const id = h['lambda-runtime-aws-request-id'];
  requestId = id;
  if (h['lambda-runtime-trace-id']) {
    env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
  } else {
    delete env._X_AMZN_TRACE_ID;
  }
  reportFatal = (err, code) => exitAfter(postError(id, err), code);

  if (handler[STREAMING] === 'response') {
    runStreaming(id, h, res.body);
    return;
  }

  const { callback, context, whenLoopEmpties } = completion(id);
  beforeExit = whenLoopEmpties;
  try {
    const event = JSON.parse(res.body.toString('utf8'));
    const result = handler(event, contextFor(context, h), callback);
    if (result && typeof result.then === 'function') {
      result.then(context.succeed, context.fail).catch(context.fail);
    }
  } catch (err) {
    callback(err);
  }
}

function contextFor(base, h) {
  const deadline = Number(h['lambda-runtime-deadline-ms']);
  return Object.assign(
    base,
    {
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    },
    {
      clientContext: parseHeaderJson(h['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseHeaderJson(h['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
      awsRequestId: h['lambda-runtime-aws-request-id'],
      tenantId: h['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis() {
        return deadline - Date.now();
      },
    },
  );
}

async function runStreaming(id, h, body) {
  beforeExit = () => {};
  const stream = responseStream();
  try {
    const result = handler(JSON.parse(body.toString('utf8')), stream, contextFor({}, h));
    if (!result || typeof result.then !== 'function') {
      throw new Error('Streaming does not support non-async handlers.');
    }
    await result;
    if (!stream.writableFinished) {
      await new Promise((resolve) => stream.end(resolve));
    }
    beforeExit = () => {};
    await request(
      'POST',
      `${PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      { 'Content-Type': headerValue(stream.contentType) },
      stream.collected(),
    );
  } catch (err) {
    beforeExit = () => {};
    logError('Invoke Error', err);
    await postError(id, err).catch(fatalClientError);
  }
  scheduleNext();
}

async function start() {
  patchConsole();
  handler = await loadHandler(env._HANDLER || '');
  handlerIsAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
  next();
}

start().catch((err) => {
  if (exiting) {
    return;
  }
  exiting = true;
  logError('Uncaught Exception', err);
  exitAfter(postInitError(err), 129);
});
