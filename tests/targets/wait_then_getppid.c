/*
 * wait_then_getppid FILE N [STATUS]: wait (polling every 2 ms, without getppid) until FILE
 * exists, then call getppid(2) N times and exit with STATUS (default 0). With FILE "-",
 * wait forever (until killed).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	const char *file = argc > 1 ? argv[1] : "-";
	long n = argc > 2 ? atol(argv[2]) : 1;
	int status = argc > 3 ? atoi(argv[3]) : 0;
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	while (strcmp(file, "-") == 0 || access(file, F_OK) != 0)
		nanosleep(&ts, NULL);
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return status;
}
