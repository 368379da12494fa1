package sous.training;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The function of the class-data-sharing training run (see src/java.rs): it walks the paths
 * every cold start walks (a handler class defined from the task root, a class from a jar in
 * lib/, JSON both ways, the logger, an exception report) so that the JDK and runtime classes
 * they need are in the archive.
 */
public class Handler implements RequestHandler<Map<String, Object>, Map<String, Object>> {

    @Override
    public Map<String, Object> handleRequest(Map<String, Object> input, Context context) {
        context.getLogger().log("training run");
        System.out.println("training run");
        if (Boolean.TRUE.equals(input.get("fail"))) {
            throw new IllegalStateException("training failure", new RuntimeException("training cause"));
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("input", input);
        out.put("bean", new Helper(String.valueOf(input.get("name")), context.getRemainingTimeInMillis()));
        return out;
    }
}
