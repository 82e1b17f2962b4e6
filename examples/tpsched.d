#!/usr/bin/env -S tracer -s
/*
 * tpsched.d: context switches by the task switched out, from the sched_switch tracepoint
 * (bpftrace-style probe name, typed arguments by name).
 * Usage: tracer -s tpsched.d
 */
#pragma D option quiet

tracepoint:sched:sched_switch
{
	@[args->prev_comm] = count();
}

tick-3s
{
	trunc(@, 15);
	exit(0);
}
