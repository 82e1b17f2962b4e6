// GcLoop N: allocates and calls System.gc() N times, then prints "done".
public class GcLoop {
    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        long kept = 0;
        for (int i = 0; i < n; i++) {
            byte[][] junk = new byte[256][];
            for (int j = 0; j < junk.length; j++) {
                junk[j] = new byte[4096];
            }
            kept += junk[i % junk.length].length;
            System.gc();
        }
        System.out.println(kept > 0 ? "done" : "none");
    }
}
