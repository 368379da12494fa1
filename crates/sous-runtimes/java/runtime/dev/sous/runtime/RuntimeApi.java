package dev.sous.runtime;

import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A client of the Lambda Runtime API: HTTP/1.1 over the pair of pipes Sous gives its managed
 * runtimes, with blocking reads and writes. A socket would cost a cold start about 20 ms of
 * class loading (java.net.http far more). Requests are serialized; the pipes may be opened
 * ahead of time.
 */
final class RuntimeApi {

    private static final String BASE = "/2018-06-01/runtime";

    private final int answersFd;
    private final int requestsFd;
    private final String hostHeader;
    private InputStream in;
    private OutputStream out;
    private final byte[] buf = new byte[8192];
    private int bufPos;
    private int bufLen;

    /** One event from {@code /invocation/next}. */
    static final class Invocation {
        String requestId;
        long deadlineMs;
        String functionArn;
        String traceId;
        String clientContext;
        String cognitoIdentity;
        String tenantId;
        byte[] body;
    }

    /** An answer of the Runtime API: status and body. */
    static final class Answer {
        final int status;
        final byte[] body;

        Answer(int status, byte[] body) {
            this.status = status;
            this.body = body;
        }
    }

    /**
     * @param address {@code AWS_LAMBDA_RUNTIME_API}, for the Host header
     * @param pipes {@code _SOUS_RUNTIME_API_PIPES}: the descriptor to read answers from and
     *     the one to write requests to, as {@code "4,5"}
     */
    RuntimeApi(String address, String pipes) {
        int comma = pipes.indexOf(',');
        if (comma < 0) {
            throw new IllegalArgumentException("_SOUS_RUNTIME_API_PIPES is not read,write: " + pipes);
        }
        this.answersFd = Integer.parseInt(pipes.substring(0, comma).trim());
        this.requestsFd = Integer.parseInt(pipes.substring(comma + 1).trim());
        this.hostHeader = address;
    }

    /** Opens the pipes (through /proc: Java has no other way to a descriptor by number). */
    private void connect() throws IOException {
        if (in == null) {
            in = new FileInputStream("/proc/self/fd/" + answersFd);
            out = new FileOutputStream("/proc/self/fd/" + requestsFd);
        }
    }

    /** Opens the pipes ahead of the first request (called from a warm-up thread). */
    synchronized void preconnect() {
        try {
            connect();
        } catch (IOException e) {
            // The first request opens them again, and reports the failure.
        }
    }

    /** Waits for the next event. */
    Invocation next() throws IOException {
        Invocation inv = new Invocation();
        Answer a = exchange("GET", BASE + "/invocation/next", null, null, null, inv);
        if (a.status != 200) {
            throw new IOException("GET /runtime/invocation/next answered " + a.status + ": "
                    + new String(a.body, StandardCharsets.UTF_8));
        }
        if (inv.requestId == null) {
            throw new IOException("GET /runtime/invocation/next: no Lambda-Runtime-Aws-Request-Id");
        }
        inv.body = a.body;
        return inv;
    }

    /** Posts the response of an invocation. */
    Answer respond(String requestId, byte[] body) throws IOException {
        return exchange("POST", BASE + "/invocation/" + requestId + "/response", "application/json", null, body, null);
    }

    /** Posts the error of an invocation. */
    Answer error(String requestId, String errorType, byte[] body) throws IOException {
        return exchange("POST", BASE + "/invocation/" + requestId + "/error", "application/json", errorType, body, null);
    }

    /** Posts an init error. */
    Answer initError(String errorType, byte[] body) throws IOException {
        return exchange("POST", BASE + "/init/error", "application/json", errorType, body, null);
    }

    private synchronized Answer exchange(String method, String path, String contentType, String errorType, byte[] body,
            Invocation headersInto) throws IOException {
        StringBuilder req = new StringBuilder(256);
        req.append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ").append(hostHeader)
                .append("\r\nUser-Agent: sous-java/1\r\n");
        if (contentType != null) {
            req.append("Content-Type: ").append(contentType).append("\r\n");
        }
        if (errorType != null) {
            req.append("Lambda-Runtime-Function-Error-Type: ").append(errorType).append("\r\n");
        }
        if (body != null) {
            req.append("Content-Length: ").append(body.length).append("\r\n");
        }
        req.append("\r\n");
        byte[] head = req.toString().getBytes(StandardCharsets.UTF_8);
        connect();
        send(head, body);
        return readAnswer(headersInto);
    }

    /** Head and body in one write (so that Nagle's algorithm never holds part of it back). */
    private void send(byte[] head, byte[] body) throws IOException {
        if (body == null || body.length == 0) {
            out.write(head);
        } else {
            byte[] all = new byte[head.length + body.length];
            System.arraycopy(head, 0, all, 0, head.length);
            System.arraycopy(body, 0, all, head.length, body.length);
            out.write(all);
        }
        out.flush();
    }

    private int readByte() throws IOException {
        if (bufPos == bufLen) {
            bufLen = in.read(buf, 0, buf.length);
            bufPos = 0;
            if (bufLen <= 0) {
                bufLen = 0;
                return -1;
            }
        }
        return buf[bufPos++] & 0xff;
    }

    private String readLine() throws IOException {
        StringBuilder sb = new StringBuilder(64);
        while (true) {
            int b = readByte();
            if (b < 0) {
                throw new IOException("Runtime API closed the connection");
            }
            if (b == '\n') {
                int n = sb.length();
                if (n > 0 && sb.charAt(n - 1) == '\r') {
                    sb.setLength(n - 1);
                }
                return sb.toString();
            }
            sb.append((char) b);
        }
    }

    private void readFully(byte[] dst, int off, int len) throws IOException {
        while (len > 0) {
            if (bufPos < bufLen) {
                int n = Math.min(len, bufLen - bufPos);
                System.arraycopy(buf, bufPos, dst, off, n);
                bufPos += n;
                off += n;
                len -= n;
            } else {
                int n = in.read(dst, off, len);
                if (n <= 0) {
                    throw new IOException("Runtime API closed the connection mid-body");
                }
                off += n;
                len -= n;
            }
        }
    }

    private Answer readAnswer(Invocation inv) throws IOException {
        String status = readLine();
        int sp = status.indexOf(' ');
        if (!status.startsWith("HTTP/1.") || sp < 0 || status.length() < sp + 4) {
            throw new IOException("Runtime API: bad status line: " + status);
        }
        int code = Integer.parseInt(status.substring(sp + 1, sp + 4));
        long length = -1;
        boolean chunked = false;
        while (true) {
            String line = readLine();
            if (line.isEmpty()) {
                break;
            }
            int colon = line.indexOf(':');
            if (colon <= 0) {
                continue;
            }
            String name = line.substring(0, colon).trim().toLowerCase();
            String value = line.substring(colon + 1).trim();
            switch (name) {
                case "content-length":
                    length = Long.parseLong(value);
                    break;
                case "transfer-encoding":
                    chunked = value.toLowerCase().contains("chunked");
                    break;
                case "lambda-runtime-aws-request-id":
                    if (inv != null) {
                        inv.requestId = value;
                    }
                    break;
                case "lambda-runtime-deadline-ms":
                    if (inv != null) {
                        inv.deadlineMs = Long.parseLong(value);
                    }
                    break;
                case "lambda-runtime-invoked-function-arn":
                    if (inv != null) {
                        inv.functionArn = value;
                    }
                    break;
                case "lambda-runtime-trace-id":
                    if (inv != null) {
                        inv.traceId = value;
                    }
                    break;
                case "lambda-runtime-client-context":
                    if (inv != null) {
                        inv.clientContext = value;
                    }
                    break;
                case "lambda-runtime-cognito-identity":
                    if (inv != null) {
                        inv.cognitoIdentity = value;
                    }
                    break;
                case "lambda-runtime-aws-tenant-id":
                    if (inv != null) {
                        inv.tenantId = value;
                    }
                    break;
                default:
                    break;
            }
        }
        byte[] body;
        if (chunked) {
            java.io.ByteArrayOutputStream acc = new java.io.ByteArrayOutputStream();
            while (true) {
                String sizeLine = readLine();
                int semi = sizeLine.indexOf(';');
                int size = Integer.parseInt((semi >= 0 ? sizeLine.substring(0, semi) : sizeLine).trim(), 16);
                if (size == 0) {
                    while (!readLine().isEmpty()) {
                        // trailers
                    }
                    break;
                }
                byte[] chunk = new byte[size];
                readFully(chunk, 0, size);
                acc.write(chunk, 0, size);
                readLine();
            }
            body = acc.toByteArray();
        } else if (length >= 0) {
            body = new byte[(int) length];
            readFully(body, 0, (int) length);
        } else {
            // Until the pipe ends.
            java.io.ByteArrayOutputStream acc = new java.io.ByteArrayOutputStream();
            int b;
            while ((b = readByte()) >= 0) {
                acc.write(b);
            }
            body = acc.toByteArray();
        }
        return new Answer(code, body);
    }
}
