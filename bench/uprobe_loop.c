/*
 * uprobe_loop: call an empty, non-inlined function N times and print the cost per call.
 *
 *   uprobe_loop N [CPU]
 *
 * The function is `bench_target`, for a uprobe (`pid$target:a.out:bench_target:entry`,
 * `uprobe:PATH:bench_target`). Pins itself to CPU when given, then prints one line:
 *
 *   ns_per_call=1234.5 calls=N elapsed_ns=...
 *
 * Used by `cargo xtask bench` (case 3, uprobe overhead).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) long bench_target(long i)
{
	__asm__ volatile("" ::: "memory");
	return i + 1;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	if (n <= 0) {
		fprintf(stderr, "usage: uprobe_loop N [CPU]\n");
		return 2;
	}
	if (argc > 2 && atoi(argv[2]) >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(atoi(argv[2]), &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			perror("sched_setaffinity");
	}
	long sum = 0;
	long long start = now_ns();
	for (long i = 0; i < n; i++)
		sum += bench_target(i);
	long long elapsed = now_ns() - start;
	printf("ns_per_call=%.1f calls=%ld elapsed_ns=%lld sum=%ld\n",
	       (double)elapsed / (double)n, n, elapsed, sum);
	fflush(stdout);
	return 0;
}
