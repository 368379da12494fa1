package sous.training;

/** A bean, shipped in the training function's lib/ jar. */
public class Helper {
    public final String name;
    private final int left;

    public Helper(String name, int left) {
        this.name = name;
        this.left = left;
    }

    public int getLeft() {
        return left;
    }

    public boolean isReady() {
        return left > 0;
    }
}
