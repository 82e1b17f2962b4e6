/*
 * spin_between MS: call getppid(2), spin on the CPU for MS milliseconds of this thread's CPU
 * time (so a loaded machine only stretches the wall time), call getppid(2) again, then make 5
 * more calls back to back.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double ms = argc > 1 ? atof(argv[1]) : 100;
	syscall(SYS_getppid);
	double end = now() + ms / 1000;
	volatile unsigned long x = 0;
	while (now() < end)
		x++;
	for (int i = 0; i < 6; i++)
		syscall(SYS_getppid);
	return 0;
}
