package com.amazonaws.services.lambda.runtime;

/**
 * A handler whose input and output are converted from and to JSON by the runtime.
 *
 * @param <I> the type the event is read into
 * @param <O> the type of the result, written back as JSON
 */
public interface RequestHandler<I, O> {

    /** Handles one event. */
    O handleRequest(I input, Context context);
}
