/* container_marker: calls marker_fn(i) every 20 ms for at most 20 s (a uprobe target that
 * lives inside a test's container root; built with -static so the root needs no libc). */
#include <unistd.h>
__attribute__((noinline)) int marker_fn(int i) { return i * 3; }
int main(void) {
	int s = 0;
	for (int i = 0; i < 1000; i++) {
		s += marker_fn(i);
		usleep(20000);
	}
	return s == 42;
}
