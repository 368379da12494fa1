package com.amazonaws.services.lambda.runtime;

/**
 * What a handler can learn about the invocation it serves and the environment it runs in.
 * Same method signatures as the interface in AWS's aws-lambda-java-core.
 */
public interface Context {

    /** The request id of this invocation (the caller sees it as x-amzn-RequestId). */
    String getAwsRequestId();

    /** The CloudWatch-style log group of the function. */
    String getLogGroupName();

    /** The log stream of this execution environment. */
    String getLogStreamName();

    /** The function's name. */
    String getFunctionName();

    /** The version being executed ($LATEST or a number). */
    String getFunctionVersion();

    /** The ARN the caller used, with its qualifier if it gave one. */
    String getInvokedFunctionArn();

    /** The Amazon Cognito identity of the caller, or null. */
    CognitoIdentity getIdentity();

    /** The client context the caller sent, or null. */
    ClientContext getClientContext();

    /** Milliseconds left before the invocation times out. */
    int getRemainingTimeInMillis();

    /** The function's configured memory, in MB. */
    int getMemoryLimitInMB();

    /** The logger whose messages go to the function's log, one event per call. */
    LambdaLogger getLogger();

    /** The X-Ray trace header of this invocation, or null. */
    default String getXrayTraceId() {
        return null;
    }

    /** The tenant id of this invocation (tenant-isolated functions), or null. */
    default String getTenantId() {
        return null;
    }
}
