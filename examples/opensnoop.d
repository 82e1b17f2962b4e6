#!/usr/bin/env -S tracer -s
/*
 * opensnoop.d: every openat(2) with its result, like opensnoop.
 * Usage: tracer -s opensnoop.d
 */
#pragma D option quiet

BEGIN
{
	printf("%-6s %-16s %4s %3s %s\n", "PID", "COMM", "FD", "ERR", "PATH");
}

syscall::openat:entry
{
	self->path = copyinstr(arg1);
}

syscall::openat:return
/self->path != ""/
{
	printf("%-6d %-16s %4d %3d %s\n", pid, execname, (int)arg0, errno, self->path);
	self->path = 0;
}
