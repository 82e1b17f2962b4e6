#!/usr/bin/env -S tracer -s
/*
 * syscount.d: system calls by process and by name, printed every 5 seconds.
 * Usage: tracer -s syscount.d
 */
#pragma D option quiet

syscall:::entry
{
	@procs[execname] = count();
	@calls[probefunc] = count();
}

tick-5s
{
	printf("%-20s %s\n", "PROCESS", "SYSCALLS");
	printa("%-20s %@d\n", @procs);
	printf("\n%-20s %s\n", "SYSCALL", "CALLS");
	printa("%-20s %@d\n", @calls);
	trunc(@procs);
	trunc(@calls);
}
