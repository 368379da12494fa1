package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/** The client context a mobile caller sent with the invocation. */
public interface ClientContext {

    /** The client application that invoked the function. */
    Client getClient();

    /** Custom values the client set. */
    Map<String, String> getCustom();

    /** The client's environment (platform, make, model, locale...). */
    Map<String, String> getEnvironment();
}
