/* argv[1] malloc()s of 5000 + i bytes (i = 0, 1, ...), each freed: sizes nothing else in the
 * process asks for, so a predicate on arg0 counts exactly these. Exits 7 if its entry point
 * still holds a breakpoint (tracer plants one there to hold a -c process, and must remove it). */
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(int argc, char **argv) {
    const unsigned char *entry = (const unsigned char *)getauxval(AT_ENTRY);
#if defined(__x86_64__)
    if (entry && entry[0] == 0xcc) /* int3 */
        return 7;
#elif defined(__aarch64__)
    unsigned int insn = 0;
    if (entry)
        memcpy(&insn, entry, 4);
    if (insn == 0xd4200000) /* brk #0 */
        return 7;
#endif
    int n = argc > 1 ? atoi(argv[1]) : 10;
    for (int i = 0; i < n; i++) {
        void *volatile p = malloc(5000 + i);
        free(p);
    }
    return 0;
}
