#!/usr/sbin/dtrace -s
/*
 * Count system calls by process name (Dynamic Tracing Guide, chapter 9).
 */
#pragma D option quiet

syscall:::entry
{
	@num[execname] = count();
}

END
{
	printa("%-20s %@8d\n", @num);
}
