package dev.sous.runtime;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer (no dependencies, so the runtime starts fast).
 *
 * <p>The reader builds untyped values as Lambda's Java serializer does: objects become
 * {@code LinkedHashMap}, arrays {@code ArrayList}, integers {@code Integer}, {@code Long} or
 * {@code BigInteger} (the smallest that fits), other numbers {@code Double}, plus {@code String},
 * {@code Boolean} and {@code null}. It is as lenient as that serializer: single-quoted strings,
 * unquoted field names, leading zeros, {@code NaN}/{@code Infinity}, control characters inside
 * strings and backslash before any character are accepted.
 */
final class Json {

    private final String text;
    private int pos;

    private Json(String text) {
        this.text = text;
    }

    /** A JSON document that could not be read. */
    static final class ParseException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ParseException(String message) {
            super(message);
        }
    }

    /** Reads one JSON document; an empty (or blank) document is {@code null}. */
    static Object parse(String text) {
        Json p = new Json(text);
        p.skipSpace();
        if (p.pos >= text.length()) {
            return null;
        }
        Object v = p.value();
        p.skipSpace();
        if (p.pos < text.length()) {
            throw p.error("Unexpected character '" + text.charAt(p.pos) + "' after the JSON value");
        }
        return v;
    }

    private ParseException error(String what) {
        return new ParseException(what + " at character " + pos);
    }

    private void skipSpace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                pos++;
            } else {
                break;
            }
        }
    }

    private Object value() {
        skipSpace();
        if (pos >= text.length()) {
            throw error("Unexpected end of input");
        }
        char c = text.charAt(pos);
        switch (c) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
            case '\'':
                return string();
            default:
                break;
        }
        if (c == '-' || c == '+' || (c >= '0' && c <= '9') || c == '.') {
            return number();
        }
        String word = word();
        switch (word) {
            case "true":
                return Boolean.TRUE;
            case "false":
                return Boolean.FALSE;
            case "null":
                return null;
            case "NaN":
                return Double.NaN;
            case "Infinity":
                return Double.POSITIVE_INFINITY;
            default:
                throw error("Unrecognized token '" + (word.isEmpty() ? String.valueOf(c) : word) + "'");
        }
    }

    private String word() {
        int start = pos;
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (Character.isLetterOrDigit(c) || c == '_' || c == '$') {
                pos++;
            } else {
                break;
            }
        }
        return text.substring(start, pos);
    }

    private Map<String, Object> object() {
        pos++; // {
        Map<String, Object> map = new LinkedHashMap<>();
        skipSpace();
        if (pos < text.length() && text.charAt(pos) == '}') {
            pos++;
            return map;
        }
        while (true) {
            skipSpace();
            if (pos >= text.length()) {
                throw error("Unexpected end of input in an object");
            }
            char c = text.charAt(pos);
            String key;
            if (c == '"' || c == '\'') {
                key = string();
            } else {
                key = word();
                if (key.isEmpty()) {
                    throw error("Unexpected character '" + c + "': expected a field name");
                }
            }
            skipSpace();
            if (pos >= text.length() || text.charAt(pos) != ':') {
                throw error("Expected ':' after a field name");
            }
            pos++;
            map.put(key, value());
            skipSpace();
            if (pos >= text.length()) {
                throw error("Unexpected end of input in an object");
            }
            c = text.charAt(pos++);
            if (c == '}') {
                return map;
            }
            if (c != ',') {
                pos--;
                throw error("Unexpected character '" + c + "': expected ',' or '}'");
            }
        }
    }

    private List<Object> array() {
        pos++; // [
        List<Object> list = new ArrayList<>();
        skipSpace();
        if (pos < text.length() && text.charAt(pos) == ']') {
            pos++;
            return list;
        }
        while (true) {
            list.add(value());
            skipSpace();
            if (pos >= text.length()) {
                throw error("Unexpected end of input in an array");
            }
            char c = text.charAt(pos++);
            if (c == ']') {
                return list;
            }
            if (c != ',') {
                pos--;
                throw error("Unexpected character '" + c + "': expected ',' or ']'");
            }
        }
    }

    private String string() {
        char quote = text.charAt(pos++);
        StringBuilder sb = null;
        int start = pos;
        while (true) {
            if (pos >= text.length()) {
                throw error("Unexpected end of input in a string");
            }
            char c = text.charAt(pos);
            if (c == quote) {
                String s = sb == null ? text.substring(start, pos) : sb.append(text, start, pos).toString();
                pos++;
                return s;
            }
            if (c != '\\') {
                pos++;
                continue;
            }
            if (sb == null) {
                sb = new StringBuilder();
            }
            sb.append(text, start, pos);
            pos++;
            if (pos >= text.length()) {
                throw error("Unexpected end of input in a string");
            }
            char e = text.charAt(pos++);
            switch (e) {
                case 'b':
                    sb.append('\b');
                    break;
                case 'f':
                    sb.append('\f');
                    break;
                case 'n':
                    sb.append('\n');
                    break;
                case 'r':
                    sb.append('\r');
                    break;
                case 't':
                    sb.append('\t');
                    break;
                case 'u':
                    if (pos + 4 > text.length()) {
                        throw error("Truncated \\u escape");
                    }
                    int code = 0;
                    for (int i = 0; i < 4; i++) {
                        int d = Character.digit(text.charAt(pos + i), 16);
                        if (d < 0) {
                            throw error("Bad \\u escape");
                        }
                        code = code * 16 + d;
                    }
                    pos += 4;
                    sb.append((char) code);
                    break;
                default:
                    sb.append(e);
                    break;
            }
            start = pos;
        }
    }

    private Object number() {
        int start = pos;
        boolean integral = true;
        char first = text.charAt(pos);
        if (first == '-' || first == '+') {
            pos++;
            if (text.startsWith("Infinity", pos)) {
                pos += 8;
                return first == '-' ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
            }
        }
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c >= '0' && c <= '9') {
                pos++;
            } else if (c == '.' || c == 'e' || c == 'E' || ((c == '-' || c == '+') && integral == false)) {
                integral = false;
                pos++;
            } else {
                break;
            }
        }
        String s = text.substring(first == '+' ? start + 1 : start, pos);
        try {
            if (integral) {
                if (s.length() < 10) {
                    return Integer.valueOf(s);
                }
                BigInteger big = new BigInteger(s);
                if (big.bitLength() < 32) {
                    return big.intValue();
                }
                if (big.bitLength() < 64) {
                    return big.longValue();
                }
                return big;
            }
            return Double.valueOf(s);
        } catch (NumberFormatException e) {
            throw error("Malformed number '" + s + "'");
        }
    }

    // ------------------------------------------------------------------------------------
    // Writing

    /** Appends {@code s} as a JSON string literal. */
    static void quote(StringBuilder out, String s) {
        out.append('"');
        int start = 0;
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c != '"' && c != '\\') {
                continue;
            }
            out.append(s, start, i);
            start = i + 1;
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    out.append("\\u00");
                    out.append(Character.forDigit(c >> 4, 16));
                    out.append(Character.forDigit(c & 0xf, 16));
                    break;
            }
        }
        out.append(s, start, n);
        out.append('"');
    }

    /** Appends a number as Lambda's serializer writes it (NaN and infinities as strings). */
    static void number(StringBuilder out, Number n) {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                out.append('"').append(n.toString()).append('"');
                return;
            }
        }
        if (n instanceof BigDecimal) {
            out.append(n.toString());
            return;
        }
        out.append(n.toString());
    }
}
