package dev.sous.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.CustomPojoSerializer;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Resolves a handler string ({@code package.Class::method} or {@code package.Class}) to a
 * callable {@link Handler}, as Lambda's Java runtime does: the class is loaded (and
 * initialized) and instantiated once, at init; a missing class or method is reported on each
 * invocation, an exception in a static initializer or constructor ends init.
 */
final class Handlers {

    private Handlers() {
    }

    /** A handler ready to be called: reads the event bytes, writes the response bytes. */
    interface Handler {
        void handle(byte[] event, ByteArrayOutputStream out, Context context) throws Throwable;
    }

    /** A handler that could not be loaded: each call reports the fault. */
    static final class FaultHandler implements Handler {
        final Fault fault;

        FaultHandler(Fault fault) {
            this.fault = fault;
        }

        @Override
        public void handle(byte[] event, ByteArrayOutputStream out, Context context) {
            throw fault;
        }
    }

    /** Resolves {@code handler} in {@code loader}; throws a {@link Fault} that must end init. */
    static Handler load(String handler, ClassLoader loader) {
        int colon = handler.lastIndexOf("::");
        String className = colon < 0 ? handler : handler.substring(0, colon);
        String methodName = colon < 0 ? null : handler.substring(colon + 2);
        if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
            return new FaultHandler(Fault.of("Invalid handler: `" + handler + "'"));
        }
        Class<?> clazz;
        try {
            clazz = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            return new FaultHandler(Fault.classNotFound(e, className));
        } catch (NoClassDefFoundError e) {
            return new FaultHandler(Fault.loading(e, className));
        } catch (Throwable t) {
            throw Fault.loading(t, className);
        }
        Handler h = methodName == null ? classHandler(clazz) : methodHandler(clazz, methodName);
        if (h instanceof FaultHandler && ((FaultHandler) h).fault.fatal) {
            throw ((FaultHandler) h).fault;
        }
        return h;
    }

    // ------------------------------------------------------------------------------------
    // Instances

    private static Object instantiate(Class<?> clazz) throws Exception {
        Constructor<?> constructor;
        try {
            constructor = clazz.getConstructor();
        } catch (NoSuchMethodException e) {
            if (clazz.getEnclosingClass() != null && !Modifier.isStatic(clazz.getModifiers())) {
                throw new Exception("Class " + clazz.getName() + " cannot be instantiated because it is a non-static inner class");
            }
            throw new Exception("Class " + clazz.getName() + " has no public zero-argument constructor", e);
        }
        try {
            return constructor.newInstance();
        } catch (InvocationTargetException e) {
            throw Fault.of(e.getCause() == null ? e : e.getCause(), true);
        } catch (InstantiationException e) {
            throw e.getCause() instanceof Exception ? (Exception) e.getCause() : e;
        }
    }

    // ------------------------------------------------------------------------------------
    // package.Class

    private static Handler classHandler(Class<?> clazz) {
        if (RequestStreamHandler.class.isAssignableFrom(clazz)) {
            try {
                return streamHandler((RequestStreamHandler) instantiate(clazz));
            } catch (Fault f) {
                return new FaultHandler(f);
            } catch (Throwable t) {
                return new FaultHandler(Fault.of(t, false));
            }
        }
        if (RequestHandler.class.isAssignableFrom(clazz)) {
            Type[] params = interfaceParameters(clazz, RequestHandler.class);
            if (params == null) {
                return new FaultHandler(Fault.of("Class " + clazz.getName()
                        + " does not implement RequestHandler with concrete type parameters"));
            }
            for (Type t : params) {
                if (t instanceof TypeVariable) {
                    boolean bound = false;
                    for (Type b : ((TypeVariable<?>) t).getBounds()) {
                        if (!Object.class.equals(b)) {
                            bound = true;
                        }
                    }
                    if (!bound) {
                        return new FaultHandler(Fault.of("Class " + clazz.getName()
                                + " does not implement RequestHandler with concrete type parameters: parameter " + t
                                + " has no upper bound."));
                    }
                }
            }
            try {
                @SuppressWarnings("unchecked")
                RequestHandler<Object, Object> instance = (RequestHandler<Object, Object>) instantiate(clazz);
                return new PojoHandler(new RequestHandlerCall(instance), params[0], params[1], clazz.getClassLoader());
            } catch (Fault f) {
                return new FaultHandler(f);
            } catch (Throwable t) {
                return new FaultHandler(Fault.of(t, false));
            }
        }
        return new FaultHandler(Fault.of("Class does not implement an appropriate handler interface: " + clazz.getName()));
    }

    /** The actual type arguments with which {@code clazz} implements {@code iface}, or null. */
    static Type[] interfaceParameters(Class<?> clazz, Class<?> iface) {
        ArrayDeque<Object[]> queue = new ArrayDeque<>();
        queue.add(new Object[] {clazz, new HashMap<TypeVariable<?>, Type>()});
        while (!queue.isEmpty()) {
            Object[] item = queue.poll();
            Type type = (Type) item[0];
            @SuppressWarnings("unchecked")
            Map<TypeVariable<?>, Type> bindings = (Map<TypeVariable<?>, Type>) item[1];
            Class<?> raw;
            Map<TypeVariable<?>, Type> inner = new HashMap<>();
            if (type instanceof ParameterizedType) {
                ParameterizedType pt = (ParameterizedType) type;
                raw = (Class<?>) pt.getRawType();
                Type[] args = pt.getActualTypeArguments();
                TypeVariable<?>[] vars = raw.getTypeParameters();
                for (int i = 0; i < args.length; i++) {
                    Type a = args[i];
                    if (a instanceof TypeVariable && bindings.containsKey(a)) {
                        a = bindings.get(a);
                    }
                    args[i] = a;
                    if (i < vars.length) {
                        inner.put(vars[i], a);
                    }
                }
                if (raw == iface) {
                    return args;
                }
            } else if (type instanceof Class) {
                raw = (Class<?>) type;
                if (raw == iface) {
                    return null; // implemented raw
                }
            } else {
                continue;
            }
            for (Type t : raw.getGenericInterfaces()) {
                queue.add(new Object[] {t, inner});
            }
            Type sup = raw.getGenericSuperclass();
            if (sup != null) {
                queue.add(new Object[] {sup, inner});
            }
        }
        return null;
    }

    // ------------------------------------------------------------------------------------
    // package.Class::method

    private static boolean isContext(Type t) {
        return Context.class.equals(t);
    }

    /** Longer signatures first, a trailing Context counting one more; bridges last. */
    private static int weight(Method m) {
        Class<?>[] p = m.getParameterTypes();
        int w = p.length;
        if (p.length > 0 && isContext(p[p.length - 1])) {
            w++;
        }
        return m.isBridge() ? w - 100 : w;
    }

    private static Handler methodHandler(Class<?> clazz, String name) {
        Method[] all;
        try {
            all = clazz.getMethods();
        } catch (NoClassDefFoundError e) {
            return new FaultHandler(new Fault("Error loading method " + name + " on class " + clazz.getName(),
                    e.getClass().getName(), Fault.trace(e), false));
        }
        List<Method> candidates = new ArrayList<>();
        for (Method m : all) {
            if (m.getName().equals(name)) {
                candidates.add(m);
            }
        }
        // Stable insertion sort by descending weight.
        for (int i = 1; i < candidates.size(); i++) {
            Method m = candidates.get(i);
            int j = i - 1;
            while (j >= 0 && weight(candidates.get(j)) < weight(m)) {
                candidates.set(j + 1, candidates.get(j));
                j--;
            }
            candidates.set(j + 1, m);
        }
        for (Method m : candidates) {
            Handler h = overload(clazz, m);
            if (h != null) {
                return h;
            }
        }
        return new FaultHandler(Fault.of("No public method named " + name
                + " with appropriate method signature found on class " + clazz.getName()));
    }

    private static Handler overload(Class<?> clazz, Method m) {
        Type r = m.getGenericReturnType();
        Type[] p = m.getGenericParameterTypes();
        switch (p.length) {
            case 0:
                return methodCall(clazz, m, null, r, false);
            case 1:
                if (InputStream.class.equals(p[0])) {
                    return streamMethod(clazz, m, true, false, false);
                }
                if (OutputStream.class.equals(p[0])) {
                    return streamMethod(clazz, m, false, true, false);
                }
                if (isContext(p[0])) {
                    return methodCall(clazz, m, null, r, true);
                }
                return methodCall(clazz, m, p[0], r, false);
            case 2:
                if (OutputStream.class.equals(p[0])) {
                    if (isContext(p[1])) {
                        return streamMethod(clazz, m, false, true, true);
                    }
                    System.err.println("Ignoring two-argument overload because first argument type is OutputStream and second argument type is not Context");
                    return null;
                }
                if (isContext(p[0])) {
                    System.err.println("Ignoring two-argument overload because first argument type is Context");
                    return null;
                }
                if (InputStream.class.equals(p[0])) {
                    if (OutputStream.class.equals(p[1])) {
                        return streamMethod(clazz, m, true, true, false);
                    }
                    if (isContext(p[1])) {
                        return streamMethod(clazz, m, true, false, true);
                    }
                    System.err.println("Ignoring two-argument overload because second parameter type, "
                            + Convert.rawClass(p[1]).getName() + ", is not OutputStream.");
                    return null;
                }
                if (isContext(p[1])) {
                    return methodCall(clazz, m, p[0], r, true);
                }
                System.err.println("Ignoring two-argument overload because second parameter type is not Context");
                return null;
            case 3:
                if (InputStream.class.equals(p[0]) && OutputStream.class.equals(p[1]) && isContext(p[2])) {
                    return streamMethod(clazz, m, true, true, true);
                }
                System.err.println("Ignoring three-argument overload because argument signature is not (InputStream, OutputStream, Context");
                return null;
            default:
                System.err.println("Ignoring an overload of method " + m.getName()
                        + " because it has too many parameters: Expected at most 3, got " + p.length);
                return null;
        }
    }

    private static Object instanceFor(Class<?> clazz, Method m) throws Exception {
        return Modifier.isStatic(m.getModifiers()) ? null : instantiate(clazz);
    }

    private static Handler methodCall(Class<?> clazz, Method m, Type input, Type output, boolean context) {
        try {
            return new PojoHandler(new MethodCall(m, instanceFor(clazz, m), input != null, context), input, output,
                    clazz.getClassLoader());
        } catch (Fault f) {
            return new FaultHandler(f);
        } catch (Throwable t) {
            return new FaultHandler(Fault.of(t, false));
        }
    }

    private static Handler streamMethod(Class<?> clazz, Method m, boolean in, boolean out, boolean context) {
        final Object instance;
        try {
            instance = instanceFor(clazz, m);
        } catch (Fault f) {
            return new FaultHandler(f);
        } catch (Throwable t) {
            return new FaultHandler(Fault.of(t, false));
        }
        final Method method = m;
        final boolean needIn = in;
        final boolean needOut = out;
        final boolean needContext = context;
        return new Handler() {
            @Override
            public void handle(byte[] event, ByteArrayOutputStream sink, Context ctx) throws Throwable {
                Object[] args = new Object[(needIn ? 1 : 0) + (needOut ? 1 : 0) + (needContext ? 1 : 0)];
                int i = 0;
                if (needIn) {
                    args[i++] = new ByteArrayInputStream(event);
                }
                if (needOut) {
                    args[i++] = sink;
                }
                if (needContext) {
                    args[i] = ctx;
                }
                invoke(method, instance, args);
            }
        };
    }

    static Object invoke(Method m, Object instance, Object[] args) throws Throwable {
        try {
            return m.invoke(instance, args);
        } catch (InvocationTargetException e) {
            throw Fault.filter(e.getCause() != null ? e.getCause() : e);
        } catch (Throwable t) {
            throw Fault.filter(t);
        }
    }

    private static Handler streamHandler(final RequestStreamHandler h) {
        return new Handler() {
            @Override
            public void handle(byte[] event, ByteArrayOutputStream out, Context context) throws Throwable {
                h.handleRequest(new ByteArrayInputStream(event), out, context);
            }
        };
    }

    // ------------------------------------------------------------------------------------
    // JSON in, JSON out

    /** The call at the heart of a JSON handler. */
    interface Call {
        Object call(Object input, Context context) throws Throwable;
    }

    static final class RequestHandlerCall implements Call {
        private final RequestHandler<Object, Object> handler;

        RequestHandlerCall(RequestHandler<Object, Object> handler) {
            this.handler = handler;
        }

        @Override
        public Object call(Object input, Context context) {
            return handler.handleRequest(input, context);
        }
    }

    static final class MethodCall implements Call {
        private final Method method;
        private final Object instance;
        private final boolean input;
        private final boolean context;

        MethodCall(Method method, Object instance, boolean input, boolean context) {
            this.method = method;
            this.instance = instance;
            this.input = input;
            this.context = context;
        }

        @Override
        public Object call(Object in, Context ctx) throws Throwable {
            Object[] args = new Object[(input ? 1 : 0) + (context ? 1 : 0)];
            int i = 0;
            if (input) {
                args[i++] = in;
            }
            if (context) {
                args[i] = ctx;
            }
            return invoke(method, instance, args);
        }
    }

    /** Converts the event from JSON to the input type and the result to JSON. */
    static final class PojoHandler implements Handler {
        private static final byte[] NULL = {'n', 'u', 'l', 'l'};

        private final Call call;
        private final Type input;
        /** Null when the handler returns nothing. */
        private final Type output;
        private final CustomPojoSerializer custom;

        PojoHandler(Call call, Type input, Type output, ClassLoader loader) {
            this.call = call;
            this.input = input;
            this.output = output == null || output == void.class || output == Void.class ? null : output;
            this.custom = customSerializer(loader);
        }

        @Override
        public void handle(byte[] event, ByteArrayOutputStream out, Context context) throws Throwable {
            Object in = null;
            if (input != null) {
                try {
                    if (custom != null) {
                        in = custom.fromJson(new ByteArrayInputStream(event), input);
                    } else {
                        in = Convert.read(Json.parse(new String(event, StandardCharsets.UTF_8)), input);
                    }
                } catch (Throwable t) {
                    throw new RuntimeException("An error occurred during JSON parsing", Fault.filter(t));
                }
            }
            Object result = call.call(in, context);
            try {
                if (output == null) {
                    out.write(NULL);
                } else if (custom != null) {
                    custom.toJson(result, out, output);
                } else {
                    StringBuilder sb = new StringBuilder(256);
                    Convert.write(sb, result);
                    out.write(sb.toString().getBytes(StandardCharsets.UTF_8));
                }
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON serialization of response", t);
            }
        }
    }

    private static final String CUSTOM_SERIALIZER_SERVICE = "META-INF/services/com.amazonaws.services.lambda.runtime.CustomPojoSerializer";

    /** The function's own serializer, when its code declares one as a service. */
    static CustomPojoSerializer customSerializer(ClassLoader loader) {
        // Only the function's own code is searched (the JDK's and the runtime's hold none).
        if (!(loader instanceof URLClassLoader) || ((URLClassLoader) loader).findResource(CUSTOM_SERIALIZER_SERVICE) == null) {
            return null;
        }
        Iterator<CustomPojoSerializer> it = ServiceLoader.load(CustomPojoSerializer.class, loader).iterator();
        return it.hasNext() ? it.next() : null;
    }
}
