package com.amazonaws.services.lambda.runtime;

import java.io.IOException;

/** Access to the runtime's global logger, for code that has no {@link Context} at hand. */
public final class LambdaRuntime {

    private LambdaRuntime() {
    }

    /** Set by the runtime at start; this default writes to standard output. */
    private static volatile LambdaLogger logger = new LambdaLogger() {
        @Override
        public void log(String message) {
            System.out.print(message);
        }

        @Override
        public void log(byte[] message) {
            try {
                System.out.write(message);
            } catch (IOException e) {
                e.printStackTrace();
            }
        }
    };

    /** The logger of this execution environment (the one {@link Context#getLogger()} returns). */
    public static LambdaLogger getLogger() {
        return logger;
    }
}
