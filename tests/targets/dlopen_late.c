/* dlopen()s the library named by argv[1] (once the file argv[3] exists, if given) and calls
 * its late_work() argv[2] times at once: a probe on late_work must be attached before
 * dlopen() returns to see every call. Exits 3 when the library cannot be loaded. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: dlopen_late LIBRARY CALLS [GO-FILE]\n");
        return 2;
    }
    int n = atoi(argv[2]);
    /* A test creates the file once tracer has attached: no race with a fixed delay. */
    for (int waited = 0; argc > 3 && access(argv[3], F_OK) != 0; waited++) {
        if (waited == 6000)
            return 6;
        usleep(10000);
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 3;
    }
    int (*f)(int) = (int (*)(int))dlsym(h, "late_work");
    if (!f)
        return 4;
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += f(i);
    /* late_work(i) is 2i: the calls all happened, in this process. */
    return sum == (long)n * (n - 1) ? 0 : 5;
}
