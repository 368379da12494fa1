package com.amazonaws.services.lambda.runtime;

/** Switches set by logging integrations (e.g. a log4j appender); not for handlers. */
public final class LambdaRuntimeInternal {

    private static volatile boolean useLog4jAppender;

    private LambdaRuntimeInternal() {
    }

    public static void setUseLog4jAppender(boolean value) {
        useLog4jAppender = value;
    }

    public static boolean getUseLog4jAppender() {
        return useLog4jAppender;
    }
}
