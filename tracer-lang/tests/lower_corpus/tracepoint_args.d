#pragma D option quiet
tracepoint:sched:sched_switch
/args->prev_pid != 0/
{
	printf("%s -> %s (%d)\n", args->prev_comm, args[4], args->next_pid);
	@[args[3]] = count();
}
