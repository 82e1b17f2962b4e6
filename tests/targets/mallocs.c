/* argv[1] malloc()s of 5000 + i bytes (i = 0, 1, ...), each freed: sizes nothing else in the
 * process asks for, so a predicate on arg0 counts exactly these. */
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    for (int i = 0; i < n; i++) {
        void *volatile p = malloc(5000 + i);
        free(p);
    }
    return 0;
}
