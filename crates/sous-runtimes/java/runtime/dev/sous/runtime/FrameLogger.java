package dev.sous.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The function's logger: each message is one framed record on the telemetry pipe (so a
 * multi-line message stays one log event), or, without that pipe, raw bytes on stdout.
 *
 * <p>Frame: 4-byte big-endian type {@code 0xa55a0003} (text), 4-byte length, 8-byte timestamp
 * in microseconds since the epoch, then the UTF-8 message.
 */
final class FrameLogger implements LambdaLogger {

    private static final int TEXT_FRAME = 0xa55a0003;

    private final OutputStream sink;
    private final boolean framed;
    /** The function's application log level; UNDEFINED messages are never filtered. */
    private final int minLevel;

    FrameLogger(OutputStream sink, boolean framed, LogLevel minLevel) {
        this.sink = sink;
        this.framed = framed;
        this.minLevel = minLevel == null ? 0 : minLevel.ordinal();
    }

    @Override
    public void log(String message) {
        write(message == null ? new byte[] {'n', 'u', 'l', 'l'} : message.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void log(byte[] message) {
        write(message == null ? new byte[0] : message);
    }

    @Override
    public void log(String message, LogLevel level) {
        if (level == null || level == LogLevel.UNDEFINED) {
            log(message);
        } else if (level.ordinal() >= minLevel) {
            log("[" + level.name() + "] " + message);
        }
    }

    @Override
    public void log(byte[] message, LogLevel level) {
        if (level == null || level == LogLevel.UNDEFINED || level.ordinal() >= minLevel) {
            log(message);
        }
    }

    synchronized void write(byte[] message) {
        try {
            if (!framed) {
                sink.write(message);
                sink.flush();
                return;
            }
            long micros = System.currentTimeMillis() * 1000L;
            byte[] frame = new byte[16 + message.length];
            putInt(frame, 0, TEXT_FRAME);
            putInt(frame, 4, message.length);
            putInt(frame, 8, (int) (micros >>> 32));
            putInt(frame, 12, (int) micros);
            System.arraycopy(message, 0, frame, 16, message.length);
            sink.write(frame);
        } catch (IOException e) {
            // The log pipe is gone: the environment is ending.
        }
    }

    private static void putInt(byte[] b, int at, int v) {
        b[at] = (byte) (v >>> 24);
        b[at + 1] = (byte) (v >>> 16);
        b[at + 2] = (byte) (v >>> 8);
        b[at + 3] = (byte) v;
    }
}
