/* jump_table X: prints pick(X, argc). pick jumps through a table of label addresses (an
 * indirect jump at every optimisation level, as a switch's jump table is at -O2), so where it
 * returns cannot be told for certain: it gets no return-instruction probes. */
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int pick(int x, int y) {
	static void *const table[] = { &&add, &&mul, &&sub, &&shift };
	if (x < 0 || x > 3)
		return -1;
	goto *table[x];
add:
	return y + 11;
mul:
	return y * 3;
sub:
	return y - 7;
shift:
	return y << 2;
}
int main(int argc, char **argv) {
	printf("%d\n", pick(argc > 1 ? atoi(argv[1]) : 3, argc));
	return 0;
}
