/* getppid_loop N: call getppid(2) N times (default 1), then exit 0. */
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1;
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return 0;
}
