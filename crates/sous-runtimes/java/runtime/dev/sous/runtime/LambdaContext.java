package dev.sous.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The {@link Context} of one invocation. */
final class LambdaContext implements Context {

    private final String requestId;
    private final long deadlineMs;
    private final String invokedArn;
    private final String traceId;
    private final String tenantId;
    private final CognitoIdentity identity;
    private final ClientContext clientContext;
    private final Bootstrap.Environment env;
    private final LambdaLogger logger;

    LambdaContext(RuntimeApi.Invocation inv, Bootstrap.Environment env, LambdaLogger logger) {
        this.requestId = inv.requestId;
        this.deadlineMs = inv.deadlineMs;
        this.invokedArn = inv.functionArn;
        this.traceId = inv.traceId;
        this.tenantId = inv.tenantId;
        this.identity = identity(inv.cognitoIdentity);
        this.clientContext = clientContext(inv.clientContext);
        this.env = env;
        this.logger = logger;
    }

    @Override
    public String getAwsRequestId() {
        return requestId;
    }

    @Override
    public String getLogGroupName() {
        return env.logGroup;
    }

    @Override
    public String getLogStreamName() {
        return env.logStream;
    }

    @Override
    public String getFunctionName() {
        return env.functionName;
    }

    @Override
    public String getFunctionVersion() {
        return env.functionVersion;
    }

    @Override
    public String getInvokedFunctionArn() {
        return invokedArn;
    }

    @Override
    public CognitoIdentity getIdentity() {
        return identity;
    }

    @Override
    public ClientContext getClientContext() {
        return clientContext;
    }

    @Override
    public int getRemainingTimeInMillis() {
        long left = deadlineMs - System.currentTimeMillis();
        return left > 0 ? (int) Math.min(left, Integer.MAX_VALUE) : 0;
    }

    @Override
    public int getMemoryLimitInMB() {
        return env.memoryMb;
    }

    @Override
    public LambdaLogger getLogger() {
        return logger;
    }

    @Override
    public String getXrayTraceId() {
        return traceId;
    }

    @Override
    public String getTenantId() {
        return tenantId;
    }

    private static String str(Map<?, ?> m, String key) {
        Object v = m.get(key);
        return v == null ? null : String.valueOf(v);
    }

    private static Map<String, String> strings(Object v) {
        Map<String, String> out = new LinkedHashMap<>();
        if (v instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                Object x = e.getValue();
                out.put(String.valueOf(e.getKey()), x == null ? null : x instanceof String ? (String) x : jsonText(x));
            }
        }
        return out;
    }

    private static String jsonText(Object v) {
        StringBuilder sb = new StringBuilder();
        Convert.write(sb, v);
        return sb.toString();
    }

    private static CognitoIdentity identity(String header) {
        if (header == null || header.isEmpty()) {
            return null;
        }
        Object v;
        try {
            v = Json.parse(header);
        } catch (RuntimeException e) {
            return null;
        }
        if (!(v instanceof Map)) {
            return null;
        }
        final String id = str((Map<?, ?>) v, "cognitoIdentityId");
        final String pool = str((Map<?, ?>) v, "cognitoIdentityPoolId");
        return new CognitoIdentity() {
            @Override
            public String getIdentityId() {
                return id;
            }

            @Override
            public String getIdentityPoolId() {
                return pool;
            }

            @Override
            public String toString() {
                return "CognitoIdentity{identityId=" + id + ", identityPoolId=" + pool + "}";
            }
        };
    }

    private static ClientContext clientContext(String header) {
        if (header == null || header.isEmpty()) {
            return null;
        }
        Object v;
        try {
            v = Json.parse(header);
        } catch (RuntimeException e) {
            return null;
        }
        if (!(v instanceof Map)) {
            return null;
        }
        Map<?, ?> m = (Map<?, ?>) v;
        Object c = m.get("client");
        final Client client;
        if (c instanceof Map) {
            final Map<?, ?> cm = (Map<?, ?>) c;
            client = new Client() {
                @Override
                public String getInstallationId() {
                    return str(cm, "installation_id");
                }

                @Override
                public String getAppTitle() {
                    return str(cm, "app_title");
                }

                @Override
                public String getAppVersionName() {
                    return str(cm, "app_version_name");
                }

                @Override
                public String getAppVersionCode() {
                    return str(cm, "app_version_code");
                }

                @Override
                public String getAppPackageName() {
                    return str(cm, "app_package_name");
                }
            };
        } else {
            client = null;
        }
        final Map<String, String> custom = strings(m.get("custom"));
        final Map<String, String> environment = Collections.unmodifiableMap(strings(m.get("env")));
        return new ClientContext() {
            @Override
            public Client getClient() {
                return client;
            }

            @Override
            public Map<String, String> getCustom() {
                return custom;
            }

            @Override
            public Map<String, String> getEnvironment() {
                return environment;
            }
        };
    }
}
