#!/usr/bin/env -S tracer -s
/*
 * specopen.d: show the syscalls a process made before an openat(2) failed, and only
 * then (speculative tracing, after the Dynamic Tracing Guide's specopen.d).
 * Usage: tracer -s specopen.d -c cmd
 */
#pragma D option quiet
#pragma D option nspec=4

syscall::openat:entry
/pid == $target/
{
	self->spec = speculation();
	speculate(self->spec);
	printf("openat(%s)\n", copyinstr(arg1));
}

syscall::openat:return
/self->spec && errno != 0/
{
	speculate(self->spec);
	printf("  failed with errno %d\n", errno);
}

syscall::openat:return
/self->spec && errno != 0/
{
	commit(self->spec);
	self->spec = 0;
}

syscall::openat:return
/self->spec/
{
	discard(self->spec);
	self->spec = 0;
}
