package com.amazonaws.services.lambda.runtime;

import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Type;

/**
 * A serializer a function may provide (as a java.util.ServiceLoader service in its code) to
 * replace the runtime's JSON conversion of RequestHandler input and output.
 */
public interface CustomPojoSerializer {

    <T> T fromJson(InputStream input, Type type);

    <T> T fromJson(String input, Type type);

    <T> void toJson(T value, OutputStream output, Type type);
}
