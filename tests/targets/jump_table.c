/* jump_table X: prints pick(X, argc); at -O2 pick's switch is an indirect jump through a
 * table, so where it returns cannot be told for certain (no return-instruction probes). */
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int pick(int x, int y) {
	switch (x) {
	case 0: return y + 11; case 1: return y * 3; case 2: return y - 7; case 3: return y << 2;
	case 4: return y ^ 5; case 5: return y / 3; case 6: return y % 7; case 7: return -y;
	default: return -1;
	}
}
int main(int argc, char **argv) {
	printf("%d\n", pick(argc > 1 ? atoi(argv[1]) : 3, argc));
	return 0;
}
