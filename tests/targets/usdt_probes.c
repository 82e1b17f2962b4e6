/* USDT probes with known arguments, for tracer-cli/tests/usdt.rs. Built with -O2 so that
 * arguments land where an optimizing compiler puts them: registers of every size, the stack, a
 * global read %rip-relative, constants, and an inlined probe whose two copies keep their
 * arguments in different places.
 *
 * usage: usdt_probes [N [MS]]  (N rounds, default 3, MS milliseconds apart; prints how often
 *                              the gated probe was enabled)
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* With _SDT_HAS_SEMAPHORES every probe of the file names a semaphore, set by the tracer while
 * the probe is enabled (uprobe ref_ctr_offset). Only tgt:gated tests its own. */
#define SEMAPHORE(p, n) \
    __extension__ volatile unsigned short p##_##n##_semaphore __attribute__((section(".probes"), used))
SEMAPHORE(tgt, args);
SEMAPHORE(tgt, gated);
SEMAPHORE(tgt, site);
SEMAPHORE(tgt, mem);
SEMAPHORE(tgt, global);
SEMAPHORE(tgt, konst);
SEMAPHORE(tgt, probe__dash);

/* Read %rip-relative by the probe. */
long tgt_global = 0x1122334455L;

/* Inlined three times (twice in main) with different arguments: the copies use different
 * registers. */
static inline __attribute__((always_inline)) void site(int which, long value)
{
    STAP_PROBE2(tgt, site, which, value);
}

__attribute__((noinline)) long other_site(long x)
{
    site(2, x * 3);
    return x;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
    struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
    int gated = 0;
    for (int i = 0; i < rounds; i++) {
        signed char c = (signed char)(-5 - i);
        short s = (short)(-300 - i);
        unsigned int u = 4000000000u + (unsigned)i;
        long l = -1234567890123L - i;
        unsigned long long big = 0xfedcba9876543210ULL + (unsigned)i;
        /* A string the program has written (a string literal's page may not be mapped in yet). */
        char word[16];
        snprintf(word, sizeof word, "hello%d", i);
        STAP_PROBE6(tgt, args, c, s, u, l, big, word);

        /* A stack slot, and a global (x86-64: tgt_global(%rip)). */
        volatile long on_stack = 77 + i;
        STAP_PROBE1(tgt, mem, on_stack);
        STAP_PROBE1(tgt, global, tgt_global);
        STAP_PROBE1(tgt, konst, 42);

        /* Fires only while a tracer has it enabled. */
        if (tgt_gated_semaphore) {
            gated++;
            STAP_PROBE1(tgt, gated, i);
        }
        site(1, 1000 + i);
        other_site(i);
        /* A second copy in main: the same probe (main:site), one more site. */
        site(3, l);
        STAP_PROBE(tgt, probe__dash);
        if (pause_ms)
            nanosleep(&pause, NULL);
    }
    printf("gated %d\n", gated);
    return 0;
}
