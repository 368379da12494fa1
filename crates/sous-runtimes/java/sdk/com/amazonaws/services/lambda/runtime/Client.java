package com.amazonaws.services.lambda.runtime;

/** The client application described by a {@link ClientContext}. */
public interface Client {

    String getInstallationId();

    String getAppTitle();

    String getAppVersionName();

    String getAppVersionCode();

    String getAppPackageName();
}
