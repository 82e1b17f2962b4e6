/* pid_calls N: calls work(i) for i in 0..N, then other() once; prints the sum. */
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int work(int x) { return x * 2 + 1; }
__attribute__((noinline)) int other(int x) { return x - 1; }
int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 5, s = 0;
	for (int i = 0; i < n; i++) s += work(i);
	s += other(s);
	printf("%d\n", s);
	return 0;
}
