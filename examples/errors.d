#!/usr/bin/env -S tracer -s
/*
 * errors.d: failing system calls by process, syscall and errno.
 * Usage: tracer -s errors.d [seconds]   ($1 defaults are not supported: pass it)
 */
#pragma D option quiet

syscall:::return
/errno != 0/
{
	@[execname, probefunc, errno] = count();
}

tick-1s
/++secs >= $1/
{
	printf("%-16s %-16s %5s %s\n", "PROCESS", "SYSCALL", "ERRNO", "COUNT");
	printa("%-16s %-16s %5d %@d\n", @);
	exit(0);
}
