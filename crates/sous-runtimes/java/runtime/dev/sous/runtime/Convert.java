package dev.sous.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Date;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SortedMap;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Converts between untyped JSON values ({@link Json}) and the Java types of a handler's
 * input and output, following the rules of Lambda's Java serializer: public fields and bean
 * setters/getters with standard bean naming (case-sensitive), unknown properties ignored,
 * null properties left out of the output, a single value accepted where an array is expected,
 * scalars coerced (a number read into a String, a numeric string into an int...).
 */
final class Convert {

    private Convert() {
    }

    /** A value that does not fit the type it must be read into. */
    static final class MismatchException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        MismatchException(String message) {
            super(message);
        }
    }

    // ------------------------------------------------------------------------------------
    // JSON value -> Java

    /** Reads the untyped JSON value {@code v} into {@code type}. */
    static Object read(Object v, Type type) {
        if (type instanceof Class) {
            return readClass(v, (Class<?>) type, null);
        }
        if (type instanceof ParameterizedType) {
            ParameterizedType pt = (ParameterizedType) type;
            return readClass(v, (Class<?>) pt.getRawType(), pt.getActualTypeArguments());
        }
        if (type instanceof GenericArrayType) {
            Type component = ((GenericArrayType) type).getGenericComponentType();
            List<?> items = asList(v);
            if (items == null) {
                return null;
            }
            Object array = Array.newInstance(rawClass(component), items.size());
            for (int i = 0; i < items.size(); i++) {
                Array.set(array, i, read(items.get(i), component));
            }
            return array;
        }
        if (type instanceof TypeVariable) {
            Type[] bounds = ((TypeVariable<?>) type).getBounds();
            return read(v, bounds.length > 0 ? bounds[0] : Object.class);
        }
        if (type instanceof WildcardType) {
            Type[] bounds = ((WildcardType) type).getUpperBounds();
            return read(v, bounds.length > 0 ? bounds[0] : Object.class);
        }
        return v;
    }

    static Class<?> rawClass(Type type) {
        if (type instanceof Class) {
            return (Class<?>) type;
        }
        if (type instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) type).getRawType();
        }
        if (type instanceof GenericArrayType) {
            return Array.newInstance(rawClass(((GenericArrayType) type).getGenericComponentType()), 0).getClass();
        }
        if (type instanceof TypeVariable) {
            Type[] bounds = ((TypeVariable<?>) type).getBounds();
            return bounds.length > 0 ? rawClass(bounds[0]) : Object.class;
        }
        if (type instanceof WildcardType) {
            Type[] bounds = ((WildcardType) type).getUpperBounds();
            return bounds.length > 0 ? rawClass(bounds[0]) : Object.class;
        }
        return Object.class;
    }

    private static String describe(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Map) {
            return "Object value";
        }
        if (v instanceof List) {
            return "Array value";
        }
        if (v instanceof String) {
            return "String value (\"" + v + "\")";
        }
        if (v instanceof Boolean) {
            return "Boolean value (" + v + ")";
        }
        return "Number value (" + v + ")";
    }

    private static MismatchException mismatch(Class<?> c, Object v) {
        return new MismatchException("Cannot deserialize value of type `" + c.getName() + "` from " + describe(v));
    }

    /** A single-element array where a scalar is expected is unwrapped (UNWRAP_SINGLE_VALUE_ARRAYS). */
    private static Object unwrap(Object v) {
        if (v instanceof List && ((List<?>) v).size() == 1) {
            return ((List<?>) v).get(0);
        }
        return v;
    }

    private static List<?> asList(Object v) {
        if (v == null) {
            return null;
        }
        if (v instanceof List) {
            return (List<?>) v;
        }
        if ("".equals(v)) {
            return null;
        }
        List<Object> one = new ArrayList<>(1);
        one.add(v);
        return one;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object readClass(Object v, Class<?> c, Type[] args) {
        if (c == Object.class) {
            return v;
        }
        if (c.isPrimitive()) {
            return readPrimitive(unwrap(v), c);
        }
        if (v == null) {
            return c == Optional.class ? Optional.empty() : null;
        }
        if (c == String.class || c == CharSequence.class) {
            v = unwrap(v);
            if (v instanceof Map || v instanceof List) {
                throw mismatch(c, v);
            }
            return v instanceof String ? v : String.valueOf(v);
        }
        if (c == Integer.class || c == Long.class || c == Double.class || c == Float.class || c == Short.class
                || c == Byte.class || c == Boolean.class || c == Character.class) {
            v = unwrap(v);
            if (v == null) {
                return null;
            }
            return readPrimitive(v, primitiveOf(c));
        }
        if (c == BigDecimal.class || c == BigInteger.class || c == Number.class) {
            v = unwrap(v);
            if (v instanceof Number || v instanceof String) {
                try {
                    BigDecimal d = new BigDecimal(v.toString().trim());
                    if (c == BigInteger.class) {
                        return d.toBigInteger();
                    }
                    if (c == Number.class) {
                        return v instanceof Number ? v : d;
                    }
                    return d;
                } catch (NumberFormatException e) {
                    throw mismatch(c, v);
                }
            }
            throw mismatch(c, v);
        }
        if (c.isEnum()) {
            v = unwrap(v);
            Object[] constants = c.getEnumConstants();
            if (v instanceof Integer) {
                int i = (Integer) v;
                if (i >= 0 && i < constants.length) {
                    return constants[i];
                }
                return null;
            }
            if (v instanceof String) {
                for (Object k : constants) {
                    if (((Enum) k).name().equals(v)) {
                        return k;
                    }
                }
                return null;
            }
            throw mismatch(c, v);
        }
        if (c == Optional.class) {
            return Optional.ofNullable(read(v, args != null ? args[0] : Object.class));
        }
        if (c == Date.class) {
            v = unwrap(v);
            if (v instanceof Number) {
                return new Date(((Number) v).longValue());
            }
            throw mismatch(c, v);
        }
        if (c.isArray()) {
            Class<?> component = c.getComponentType();
            if (component == byte.class && v instanceof String) {
                return Base64.getMimeDecoder().decode((String) v);
            }
            List<?> items = asList(v);
            if (items == null) {
                return null;
            }
            Object array = Array.newInstance(component, items.size());
            for (int i = 0; i < items.size(); i++) {
                Array.set(array, i, read(items.get(i), component));
            }
            return array;
        }
        if (Map.class.isAssignableFrom(c)) {
            if ("".equals(v)) {
                return null;
            }
            if (!(v instanceof Map)) {
                throw mismatch(c, v);
            }
            Type keyType = args != null && args.length == 2 ? args[0] : String.class;
            Type valueType = args != null && args.length == 2 ? args[1] : Object.class;
            Map out = newMap(c);
            for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
                out.put(readKey(e.getKey(), keyType), read(e.getValue(), valueType));
            }
            return out;
        }
        if (Collection.class.isAssignableFrom(c) || c == Iterable.class) {
            List<?> items = asList(v);
            if (items == null) {
                return null;
            }
            Type itemType = args != null && args.length == 1 ? args[0] : Object.class;
            Collection out = newCollection(c);
            for (Object item : items) {
                out.add(read(item, itemType));
            }
            return out;
        }
        return readBean(v, c);
    }

    private static Object readKey(String key, Type keyType) {
        Class<?> k = rawClass(keyType);
        if (k == String.class || k == Object.class || k == CharSequence.class) {
            return key;
        }
        return readClass(key, k, null);
    }

    @SuppressWarnings("rawtypes")
    private static Map newMap(Class<?> c) {
        if (!c.isInterface() && !Modifier.isAbstract(c.getModifiers())) {
            try {
                return (Map) c.getConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                // fall through to a standard map
            }
        }
        if (SortedMap.class.isAssignableFrom(c)) {
            return new TreeMap();
        }
        if (c.isAssignableFrom(LinkedHashMap.class)) {
            return new LinkedHashMap();
        }
        if (c.isAssignableFrom(HashMap.class)) {
            return new HashMap();
        }
        throw new MismatchException("Cannot construct instance of `" + c.getName() + "`");
    }

    @SuppressWarnings("rawtypes")
    private static Collection newCollection(Class<?> c) {
        if (!c.isInterface() && !Modifier.isAbstract(c.getModifiers())) {
            try {
                return (Collection) c.getConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                // fall through to a standard collection
            }
        }
        if (SortedSet.class.isAssignableFrom(c)) {
            return new TreeSet();
        }
        if (Set.class.isAssignableFrom(c)) {
            return new HashSet();
        }
        if (c.isAssignableFrom(ArrayList.class)) {
            return new ArrayList();
        }
        if (c.isAssignableFrom(ArrayDeque.class)) {
            return new ArrayDeque();
        }
        if (c.isAssignableFrom(LinkedList.class)) {
            return new LinkedList();
        }
        if (c.isAssignableFrom(LinkedHashSet.class)) {
            return new LinkedHashSet();
        }
        throw new MismatchException("Cannot construct instance of `" + c.getName() + "`");
    }

    private static Class<?> primitiveOf(Class<?> box) {
        if (box == Integer.class) {
            return int.class;
        }
        if (box == Long.class) {
            return long.class;
        }
        if (box == Double.class) {
            return double.class;
        }
        if (box == Float.class) {
            return float.class;
        }
        if (box == Short.class) {
            return short.class;
        }
        if (box == Byte.class) {
            return byte.class;
        }
        if (box == Boolean.class) {
            return boolean.class;
        }
        return char.class;
    }

    private static Object readPrimitive(Object v, Class<?> p) {
        if (p == boolean.class) {
            if (v == null) {
                return Boolean.FALSE;
            }
            if (v instanceof Boolean) {
                return v;
            }
            if (v instanceof Integer) {
                return (Integer) v != 0;
            }
            if ("true".equals(v) || "True".equals(v) || "TRUE".equals(v)) {
                return Boolean.TRUE;
            }
            if ("false".equals(v) || "False".equals(v) || "FALSE".equals(v) || "".equals(v)) {
                return Boolean.FALSE;
            }
            throw mismatch(boolean.class, v);
        }
        if (p == char.class) {
            if (v instanceof String && ((String) v).length() == 1) {
                return ((String) v).charAt(0);
            }
            if (v instanceof Integer) {
                return (char) ((Integer) v).intValue();
            }
            if (v == null) {
                return '\0';
            }
            throw mismatch(char.class, v);
        }
        Number n;
        if (v == null) {
            n = 0;
        } else if (v instanceof Number) {
            n = (Number) v;
        } else if (v instanceof String) {
            String s = ((String) v).trim();
            if (s.isEmpty()) {
                n = 0;
            } else {
                try {
                    n = new BigDecimal(s);
                } catch (NumberFormatException e) {
                    throw mismatch(p, v);
                }
            }
        } else {
            throw mismatch(p, v);
        }
        if (p == int.class) {
            return n.intValue();
        }
        if (p == long.class) {
            return n.longValue();
        }
        if (p == double.class) {
            return n.doubleValue();
        }
        if (p == float.class) {
            return n.floatValue();
        }
        if (p == short.class) {
            return n.shortValue();
        }
        return n.byteValue();
    }

    /** Standard bean naming: "FirstName" -> "firstName", "URL" -> "URL". */
    static String decapitalize(String name) {
        if (name.isEmpty()) {
            return name;
        }
        if (name.length() > 1 && Character.isUpperCase(name.charAt(0)) && Character.isUpperCase(name.charAt(1))) {
            return name;
        }
        char[] chars = name.toCharArray();
        chars[0] = Character.toLowerCase(chars[0]);
        return new String(chars);
    }

    /** How a bean property is set: a setter (any visibility) or a public field. */
    private static final class Mutator {
        final Method setter;
        final Field field;

        Mutator(Method setter, Field field) {
            this.setter = setter;
            this.field = field;
        }

        Type type() {
            return setter != null ? setter.getGenericParameterTypes()[0] : field.getGenericType();
        }

        void set(Object bean, Object value) throws ReflectiveOperationException {
            if (setter != null) {
                setter.invoke(bean, value);
            } else {
                field.set(bean, value);
            }
        }
    }

    private static final Map<Class<?>, Map<String, Mutator>> MUTATORS = new HashMap<>();

    private static Map<String, Mutator> mutators(Class<?> c) {
        Map<String, Mutator> m = MUTATORS.get(c);
        if (m != null) {
            return m;
        }
        m = new HashMap<>();
        for (Field f : c.getFields()) {
            int mod = f.getModifiers();
            if (!Modifier.isStatic(mod) && !Modifier.isTransient(mod)) {
                if (Modifier.isFinal(mod)) {
                    f.setAccessible(true);
                }
                m.put(f.getName(), new Mutator(null, f));
            }
        }
        // Setters win over fields; subclasses over superclasses.
        List<Class<?>> chain = new ArrayList<>();
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            chain.add(0, k);
        }
        for (Class<?> k : chain) {
            for (Method method : k.getDeclaredMethods()) {
                String name = method.getName();
                if (name.length() > 3 && name.startsWith("set") && method.getParameterCount() == 1
                        && !Modifier.isStatic(method.getModifiers()) && !method.isBridge() && !method.isSynthetic()) {
                    if (!Modifier.isPublic(method.getModifiers()) || !Modifier.isPublic(k.getModifiers())) {
                        method.setAccessible(true);
                    }
                    m.put(decapitalize(name.substring(3)), new Mutator(method, null));
                }
            }
        }
        MUTATORS.put(c, m);
        return m;
    }

    @SuppressWarnings("unchecked")
    private static Object readBean(Object v, Class<?> c) {
        if ("".equals(v)) {
            return null;
        }
        if (!(v instanceof Map)) {
            throw mismatch(c, v);
        }
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            throw new MismatchException("Cannot construct instance of `" + c.getName()
                    + "` (no Creators, like default constructor, exist): abstract types either need to be mapped to concrete types, have custom deserializer, or contain additional type information");
        }
        Object bean;
        try {
            Constructor<?> k = c.getDeclaredConstructor();
            if (!Modifier.isPublic(k.getModifiers()) || !Modifier.isPublic(c.getModifiers())) {
                k.setAccessible(true);
            }
            bean = k.newInstance();
        } catch (NoSuchMethodException e) {
            throw new MismatchException("Cannot construct instance of `" + c.getName()
                    + "` (no Creators, like default constructor, exist): cannot deserialize from Object value (no delegate- or property-based Creator)");
        } catch (ReflectiveOperationException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new MismatchException("Cannot construct instance of `" + c.getName() + "`: " + cause);
        }
        Map<String, Mutator> props = mutators(c);
        // Lambda's serializer maps the event classes of aws-lambda-java-events onto their
        // documents' names ("Records", "eventSource"...) with mix-ins; matching their property
        // names without regard to case does the same.
        boolean eventClass = c.getName().startsWith("com.amazonaws.services.lambda.runtime.events.");
        for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
            Mutator m = props.get(e.getKey());
            if (m == null && eventClass) {
                for (Map.Entry<String, Mutator> p : props.entrySet()) {
                    if (p.getKey().equalsIgnoreCase(e.getKey())) {
                        m = p.getValue();
                        break;
                    }
                }
            }
            if (m == null) {
                continue;
            }
            try {
                m.set(bean, read(e.getValue(), m.type()));
            } catch (MismatchException x) {
                throw new MismatchException(x.getMessage() + " (through reference chain: " + c.getName() + "[\"" + e.getKey() + "\"])");
            } catch (ReflectiveOperationException x) {
                Throwable cause = x.getCause() != null ? x.getCause() : x;
                throw new MismatchException("Problem deserializing property '" + e.getKey() + "' (of type " + c.getName() + "): " + cause);
            }
        }
        return bean;
    }

    // ------------------------------------------------------------------------------------
    // Java -> JSON text

    /** Writes {@code v} as JSON. */
    static void write(StringBuilder out, Object v) {
        write(out, v, 0);
    }

    private static void write(StringBuilder out, Object v, int depth) {
        if (depth > 1000) {
            throw new MismatchException("Document nesting depth exceeds the maximum allowed (1000), or a value refers to itself");
        }
        if (v == null) {
            out.append("null");
        } else if (v instanceof String) {
            Json.quote(out, (String) v);
        } else if (v instanceof Boolean) {
            out.append(((Boolean) v).booleanValue() ? "true" : "false");
        } else if (v instanceof Number) {
            Json.number(out, (Number) v);
        } else if (v instanceof Character || v instanceof CharSequence) {
            Json.quote(out, v.toString());
        } else if (v instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                Object k = e.getKey();
                Json.quote(out, k instanceof Enum ? ((Enum<?>) k).name() : String.valueOf(k));
                out.append(':');
                write(out, e.getValue(), depth + 1);
            }
            out.append('}');
        } else if (v instanceof Iterable) {
            out.append('[');
            boolean first = true;
            Iterator<?> it = ((Iterable<?>) v).iterator();
            while (it.hasNext()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                write(out, it.next(), depth + 1);
            }
            out.append(']');
        } else if (v instanceof byte[]) {
            Json.quote(out, Base64.getEncoder().encodeToString((byte[]) v));
        } else if (v.getClass().isArray()) {
            out.append('[');
            int n = Array.getLength(v);
            for (int i = 0; i < n; i++) {
                if (i > 0) {
                    out.append(',');
                }
                write(out, Array.get(v, i), depth + 1);
            }
            out.append(']');
        } else if (v instanceof Enum) {
            Json.quote(out, ((Enum<?>) v).name());
        } else if (v instanceof Optional) {
            write(out, ((Optional<?>) v).orElse(null), depth + 1);
        } else if (v instanceof Date) {
            out.append(((Date) v).getTime());
        } else if (v.getClass().getName().startsWith("java.time.")) {
            Json.quote(out, v.toString());
        } else {
            writeBean(out, v, depth);
        }
    }

    /** How a bean property is read: a public getter or a public field. */
    private static final class Accessor {
        final String name;
        final Method getter;
        final Field field;

        Accessor(String name, Method getter, Field field) {
            this.name = name;
            this.getter = getter;
            this.field = field;
        }

        Object get(Object bean) throws ReflectiveOperationException {
            return getter != null ? getter.invoke(bean) : field.get(bean);
        }
    }

    private static final Map<Class<?>, List<Accessor>> ACCESSORS = new HashMap<>();

    private static List<Accessor> accessors(Class<?> c) {
        List<Accessor> list = ACCESSORS.get(c);
        if (list != null) {
            return list;
        }
        // Order as Lambda's serializer does: declared fields first (superclass first), then
        // properties that only have a getter.
        Map<String, Method> getters = new HashMap<>();
        for (Method m : c.getMethods()) {
            if (m.getParameterCount() != 0 || Modifier.isStatic(m.getModifiers()) || m.getDeclaringClass() == Object.class
                    || m.isBridge() || m.isSynthetic()) {
                continue;
            }
            String name = m.getName();
            Class<?> r = m.getReturnType();
            String prop = null;
            if (name.length() > 3 && name.startsWith("get") && r != void.class) {
                prop = decapitalize(name.substring(3));
            } else if (name.length() > 2 && name.startsWith("is") && r == boolean.class) {
                prop = decapitalize(name.substring(2));
            }
            if (prop != null && !getters.containsKey(prop)) {
                if (!Modifier.isPublic(m.getDeclaringClass().getModifiers())) {
                    m.setAccessible(true);
                }
                getters.put(prop, m);
            }
        }
        Map<String, Accessor> props = new LinkedHashMap<>();
        List<Class<?>> chain = new ArrayList<>();
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            chain.add(0, k);
        }
        for (Class<?> k : chain) {
            for (Field f : k.getDeclaredFields()) {
                int mod = f.getModifiers();
                if (Modifier.isStatic(mod) || f.isSynthetic()) {
                    continue;
                }
                String name = f.getName();
                Method g = getters.remove(name);
                if (g != null) {
                    props.put(name, new Accessor(name, g, null));
                } else if (Modifier.isPublic(mod) && !Modifier.isTransient(mod) && !props.containsKey(name)) {
                    if (!Modifier.isPublic(k.getModifiers())) {
                        f.setAccessible(true);
                    }
                    props.put(name, new Accessor(name, null, f));
                }
            }
        }
        List<String> rest = new ArrayList<>(getters.keySet());
        java.util.Collections.sort(rest);
        for (String name : rest) {
            props.put(name, new Accessor(name, getters.get(name), null));
        }
        list = new ArrayList<>(props.values());
        ACCESSORS.put(c, list);
        return list;
    }

    private static void writeBean(StringBuilder out, Object bean, int depth) {
        out.append('{');
        boolean first = true;
        for (Accessor a : accessors(bean.getClass())) {
            Object value;
            try {
                value = a.get(bean);
            } catch (ReflectiveOperationException e) {
                Throwable cause = e.getCause() != null ? e.getCause() : e;
                throw new MismatchException("Problem serializing property '" + a.name + "' of " + bean.getClass().getName() + ": " + cause);
            }
            if (value == null) {
                continue;
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            Json.quote(out, a.name);
            out.append(':');
            write(out, value, depth + 1);
        }
        out.append('}');
    }
}
