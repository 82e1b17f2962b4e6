#pragma D option quiet
tracepoint:sched:sched_switch
/args[1] != 0/
{
	printf("%s -> %s (%d)\n", args[0], args[4], args[5]);
	@[args[3]] = count();
}
