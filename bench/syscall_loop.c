/*
 * syscall_loop: issue getppid(2) N times and print the cost per call.
 *
 *   syscall_loop N [CPU [RATE]]
 *
 * Pins itself to CPU when given (-1: anywhere), warms up with 1000 calls, then times N calls
 * with CLOCK_MONOTONIC and prints one line:
 *
 *   ns_per_call=123.4 calls=N warmup=1000 elapsed_ns=...
 *
 * With RATE (calls per second), the calls are paced: call i is made no earlier than i/RATE
 * seconds after the first (busy-waiting in between), for measuring output throughput at a
 * given event rate. It calls syscall(SYS_getppid) rather than a libc wrapper so that nothing can be cached.
 * Used by `cargo xtask bench` (per-event overhead and printf throughput).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 1000

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	if (n <= 0) {
		fprintf(stderr, "usage: syscall_loop N [CPU [RATE]]\n");
		return 2;
	}
	double rate = argc > 3 ? atof(argv[3]) : 0;
	if (argc > 2 && atoi(argv[2]) >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(atoi(argv[2]), &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			perror("sched_setaffinity");
	}
	for (int i = 0; i < WARMUP; i++)
		syscall(SYS_getppid);
	long long start = now_ns();
	if (rate > 0) {
		double step = 1e9 / rate;
		for (long i = 0; i < n; i++) {
			long long due = start + (long long)(step * (double)i);
			while (now_ns() < due)
				;
			syscall(SYS_getppid);
		}
	} else {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
	}
	long long elapsed = now_ns() - start;
	printf("ns_per_call=%.1f calls=%ld warmup=%d elapsed_ns=%lld\n",
	       (double)elapsed / (double)n, n, WARMUP, elapsed);
	return 0;
}
