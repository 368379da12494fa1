package dev.sous.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOError;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.security.CodeSource;
import java.security.PermissionCollection;
import java.security.Permissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Sous's Java runtime: loads the function's handler from the task root ({@code _HANDLER}:
 * {@code package.Class::method} or {@code package.Class}), then serves invocations from the
 * Runtime API until the environment ends, as Lambda's Java runtime interface client does.
 *
 * <p>Kept lean for cold start: no lambdas, no java.net.http, no regex, and compiled with
 * inline string concatenation, so that the JVM loads as few classes as possible.
 */
public final class Bootstrap {

    /** The X-Ray trace header of the current invocation, as Lambda's Java runtime sets it. */
    private static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";
    private static final String USER_EXCEPTION = "Runtime.UserException";
    private static final String BAD_FUNCTION_CODE = "Runtime.BadFunctionCode";

    private Bootstrap() {
    }

    /** What the environment variables say about the function. */
    static final class Environment {
        final String functionName = env("AWS_LAMBDA_FUNCTION_NAME", "");
        final String functionVersion = env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
        final String logGroup = env("AWS_LAMBDA_LOG_GROUP_NAME", null);
        final String logStream = env("AWS_LAMBDA_LOG_STREAM_NAME", null);
        final int memoryMb = parseInt(env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"), 128);
    }

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null ? fallback : v;
    }

    private static int parseInt(String s, int fallback) {
        try {
            return Integer.parseInt(s.trim());
        } catch (RuntimeException e) {
            return fallback;
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) {
        System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));
        FrameLogger logger = logger();
        installLogger(logger);

        String address = System.getenv("AWS_LAMBDA_RUNTIME_API");
        String pipes = System.getenv("_SOUS_RUNTIME_API_PIPES");
        if (address == null || pipes == null) {
            System.err.println("sous java runtime: started without the Runtime API pipes");
            System.exit(1);
        }
        final RuntimeApi api = new RuntimeApi(address, pipes);
        warmUp(api);
        Environment env = new Environment();

        String taskRoot = env("LAMBDA_TASK_ROOT", System.getProperty("user.dir"));
        ClassLoader loader = functionLoader(taskRoot, "/opt/java");
        Thread.currentThread().setContextClassLoader(loader);

        Handlers.Handler handler = null;
        try {
            handler = Handlers.load(env("_HANDLER", ""), loader);
        } catch (Throwable t) {
            Fault f = t instanceof Fault ? (Fault) t : Fault.of(Fault.filter(t), true);
            logger.log(f.reportable());
            try {
                api.initError(BAD_FUNCTION_CODE, f.body());
            } catch (IOException e) {
                System.err.println("sous java runtime: POST /runtime/init/error: " + e);
            }
            System.exit(1);
        }
        try {
            serve(api, handler, env, logger);
        } catch (IOException e) {
            System.err.println("sous java runtime: Runtime API: " + e);
            System.exit(1);
        }
    }

    /**
     * While this thread loads the handler, another opens the Runtime API pipes and loads the
     * JSON classes: both cost milliseconds of class loading that need not wait.
     */
    private static void warmUp(final RuntimeApi api) {
        Thread t = new Thread(new Runnable() {
            @Override
            public void run() {
                api.preconnect();
                StringBuilder sb = new StringBuilder();
                Convert.write(sb, Json.parse("{\"warm\":[1,2.5,\"up\",true,null,{}]}"));
            }
        }, "sous-warm-up");
        t.setDaemon(true);
        t.start();
    }

    /** The framed telemetry pipe when the platform gives one, stdout otherwise. */
    private static FrameLogger logger() {
        LogLevel level = LogLevel.UNDEFINED;
        String configured = System.getenv("AWS_LAMBDA_LOG_LEVEL");
        if (configured != null && !configured.isEmpty()) {
            try {
                level = LogLevel.fromString(configured);
            } catch (IllegalArgumentException e) {
                level = LogLevel.UNDEFINED;
            }
        }
        String fd = System.getenv("_LAMBDA_TELEMETRY_LOG_FD");
        if (fd != null && !fd.isEmpty()) {
            try {
                OutputStream sink = new FileOutputStream("/proc/self/fd/" + Integer.parseInt(fd.trim()));
                return new FrameLogger(sink, true, level);
            } catch (IOException | RuntimeException e) {
                System.err.println("sous java runtime: cannot open the telemetry log fd " + fd + ": " + e);
            }
        }
        return new FrameLogger(new FileOutputStream(FileDescriptor.out), false, level);
    }

    /** Makes {@code LambdaRuntime.getLogger()} return the environment's logger. */
    private static void installLogger(LambdaLogger logger) {
        try {
            Field f = LambdaRuntime.class.getDeclaredField("logger");
            f.setAccessible(true);
            f.set(null, logger);
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("sous java runtime: cannot install the LambdaRuntime logger: " + e);
        }
    }

    /**
     * The function's class loader: the task root, then its {@code lib/*.jar}, then the layers'
     * {@code /opt/java/lib/*.jar} (each sorted by name). Its parent is the runtime's loader, so
     * the {@code com.amazonaws.services.lambda.runtime} interfaces are the runtime's own even
     * when the function bundles aws-lambda-java-core.
     */
    static ClassLoader functionLoader(String taskRoot, String optRoot) {
        List<URL> urls = new ArrayList<>();
        try {
            urls.add(new URL("file", null, -1, taskRoot + "/"));
            addJars(new File(taskRoot, "lib"), urls);
            addJars(new File(optRoot, "lib"), urls);
        } catch (IOException e) {
            System.err.println("sous java runtime: class path: " + e);
        }
        return new FunctionLoader(urls.toArray(new URL[0]), Bootstrap.class.getClassLoader());
    }

    /**
     * The function's class loader. It grants its classes no permissions of their own (there
     * is no security manager to check them), which spares computing file permissions for each
     * code source: that alone costs milliseconds of cold start (it loads the JDK's security
     * configuration).
     */
    static final class FunctionLoader extends URLClassLoader {
        static {
            ClassLoader.registerAsParallelCapable();
        }

        FunctionLoader(URL[] urls, ClassLoader parent) {
            super(urls, parent);
        }

        @Override
        protected PermissionCollection getPermissions(CodeSource codesource) {
            return new Permissions();
        }
    }

    private static void addJars(File dir, List<URL> urls) throws IOException {
        String[] names = dir.list();
        if (names == null) {
            return;
        }
        Arrays.sort(names);
        for (String name : names) {
            if (name.endsWith(".jar")) {
                urls.add(new URL("file", null, -1, dir.getPath() + "/" + name));
            }
        }
    }

    /** The invocation loop. Returns only when the environment must end. */
    private static void serve(RuntimeApi api, Handlers.Handler handler, Environment env, FrameLogger logger)
            throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(1024);
        while (true) {
            RuntimeApi.Invocation inv = api.next();
            if (inv.traceId != null) {
                System.setProperty(TRACE_PROPERTY, inv.traceId);
            } else {
                System.clearProperty(TRACE_PROPERTY);
            }
            LambdaContext context = new LambdaContext(inv, env, logger);
            out.reset();
            Fault fault = null;
            boolean exit = false;
            byte[] response = null;
            String errorType = null;
            byte[] errorBody = null;
            try {
                handler.handle(inv.body, out, context);
                response = out.toByteArray();
                // A handler may have set the interrupted flag; the next invocation starts clean.
                Thread.interrupted();
            } catch (Fault f) {
                exit = f.fatal;
                fault = f;
                errorType = BAD_FUNCTION_CODE;
                errorBody = f.body();
            } catch (Throwable t) {
                exit = t instanceof VirtualMachineError || t instanceof IOError;
                Fault.filter(t);
                fault = Fault.of(t, false);
                errorType = USER_EXCEPTION;
                errorBody = Fault.body(t);
            }
            if (fault != null) {
                logger.log(fault.reportable());
                api.error(inv.requestId, errorType, errorBody);
            } else {
                api.respond(inv.requestId, response);
            }
            if (exit) {
                System.exit(1);
            }
        }
    }
}
