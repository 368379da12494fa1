package dev.sous.runtime;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A failure to load or call the handler that is the function's fault (bad handler string,
 * missing class or method, a constructor that throws...), reported as Lambda's Java runtime
 * reports it: {@code {"errorMessage", "errorType"}} without a stack trace in the response,
 * the message, type and trace in the log.
 */
final class Fault extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Frames of the runtime itself are cut from traces the function's owner sees. */
    private static final String RUNTIME_PACKAGE = "dev.sous.runtime.";

    final String msg;
    /** The exception class name, or null. */
    final String exception;
    /** The printed stack trace, or null. */
    final String trace;
    /** After a fatal fault the environment ends. */
    final boolean fatal;

    Fault(String msg, String exception, String trace, boolean fatal) {
        super(msg, null, false, false);
        this.msg = msg;
        this.exception = exception;
        this.trace = trace;
        this.fatal = fatal;
    }

    /** A fault from a message only. */
    static Fault of(String msg) {
        return new Fault(msg, null, null, false);
    }

    /** A fault from a throwable: its message (or class name), class name and trace. */
    static Fault of(Throwable t, boolean fatal) {
        String m = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        return new Fault(m, t.getClass().getName(), trace(t), fatal);
    }

    /** A class that failed to load or initialize. */
    static Fault loading(Throwable t, String className) {
        return new Fault("Error loading class " + className + (t.getMessage() == null ? "" : ": " + t.getMessage()),
                t.getClass().getName(), trace(t), true);
    }

    /** A handler class that does not exist. */
    static Fault classNotFound(Throwable t, String className) {
        return new Fault("Class not found: " + className, t.getClass().getName(), trace(t), false);
    }

    /** The printed stack trace of {@code t}, runtime frames removed. */
    static String trace(Throwable t) {
        filter(t);
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }

    /** Cuts each trace (causes and suppressed too) at its first runtime frame. */
    static <T extends Throwable> T filter(T t) {
        filter(t, new IdentityHashMap<Throwable, Boolean>());
        return t;
    }

    private static void filter(Throwable t, Map<Throwable, Boolean> seen) {
        if (t == null || seen.put(t, Boolean.TRUE) != null) {
            return;
        }
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (frames[i].getClassName().startsWith(RUNTIME_PACKAGE)) {
                StackTraceElement[] cut = new StackTraceElement[i];
                System.arraycopy(frames, 0, cut, 0, i);
                t.setStackTrace(cut);
                break;
            }
        }
        filter(t.getCause(), seen);
        for (Throwable s : t.getSuppressed()) {
            filter(s, seen);
        }
    }

    /** The log record Lambda writes for this fault. */
    String reportable() {
        if (exception != null || trace != null) {
            return msg + ": " + (exception == null ? "" : exception) + "\n" + (trace == null ? "" : trace) + "\n";
        }
        return msg + "\n";
    }

    /** The error document posted to the Runtime API. */
    byte[] body() {
        StringBuilder sb = new StringBuilder(128);
        sb.append("{\"errorMessage\":");
        Json.quote(sb, msg);
        if (exception != null) {
            sb.append(",\"errorType\":");
            Json.quote(sb, exception);
        }
        sb.append('}');
        return Bootstrap.utf8(sb.toString());
    }

    /** The error document of an exception thrown by the handler: with its stack trace. */
    static byte[] body(Throwable t) {
        String m = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        StringBuilder sb = new StringBuilder(512);
        sb.append("{\"errorMessage\":");
        Json.quote(sb, m);
        sb.append(",\"errorType\":");
        Json.quote(sb, t.getClass().getName());
        sb.append(",\"stackTrace\":[");
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (i > 0) {
                sb.append(',');
            }
            Json.quote(sb, frames[i].toString());
        }
        sb.append("]}");
        return Bootstrap.utf8(sb.toString());
    }
}
