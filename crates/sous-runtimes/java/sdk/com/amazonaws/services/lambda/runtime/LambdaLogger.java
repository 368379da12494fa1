package com.amazonaws.services.lambda.runtime;

import com.amazonaws.services.lambda.runtime.logging.LogLevel;

/** Writes to the function's log: each call becomes one log event, newlines included. */
public interface LambdaLogger {

    /** Logs a message as one event. */
    void log(String message);

    /** Logs raw bytes as one event. */
    void log(byte[] message);

    /** Logs a message at a level (filtered by the function's application log level). */
    default void log(String message, LogLevel logLevel) {
        log(message);
    }

    /** Logs raw bytes at a level. */
    default void log(byte[] message, LogLevel logLevel) {
        log(message);
    }
}
