/*
 * threads K FILE: two threads run at once; the first calls getppid(2) K times, the second
 * 2K times. When both are done, "tid calls" of each is written to FILE.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

struct work {
	long calls;
	long tid;
};

static pthread_barrier_t start;

static void *run(void *p)
{
	struct work *w = p;
	w->tid = syscall(SYS_gettid);
	pthread_barrier_wait(&start);
	for (long i = 0; i < w->calls; i++)
		syscall(SYS_getppid);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	long k = atol(argv[1]);
	struct work a = { k, 0 }, b = { 2 * k, 0 };
	pthread_t ta, tb;
	pthread_barrier_init(&start, NULL, 2);
	pthread_create(&ta, NULL, run, &a);
	pthread_create(&tb, NULL, run, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 2;
	fprintf(f, "%ld %ld\n%ld %ld\n", a.tid, a.calls, b.tid, b.calls);
	return fclose(f) == 0 ? 0 : 2;
}
