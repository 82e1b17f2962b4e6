/* A tiny "JIT": copies a counting loop into an anonymous executable page, names it in
 * /tmp/perf-PID.map the way Java's jcmd Compiler.perfmap does (0x prefixes, with a
 * malformed line and a truncated last line around it), and runs it for about a second. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
/* dec %rdi; jnz .-3; ret */
static const unsigned char code[] = {0x48, 0xff, 0xcf, 0x75, 0xfb, 0xc3};
#elif defined(__aarch64__)
/* subs x0, x0, #1; b.ne .-4; ret */
static const unsigned int code[] = {0xf1000400, 0x54ffffe1, 0xd65f03c0};
#else
#error "no code for this architecture"
#endif

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *p = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memcpy(p + 0x40, code, sizeof code);
    __builtin___clear_cache((char *)p, (char *)p + page);
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "not a perf map line\n");
    fprintf(f, "0x%016lx 0x%016lx jit_spin_loop\n", (unsigned long)(p + 0x40),
            (unsigned long)sizeof code);
    fprintf(f, "%lx 10 truncated", (unsigned long)p);
    fclose(f);
    long (*fn)(long) = (long (*)(long))(p + 0x40);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        fn(1000000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
    return 0;
}
