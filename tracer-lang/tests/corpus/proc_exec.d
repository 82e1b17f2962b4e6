#pragma D option quiet
#pragma D option switchrate=10hz

proc:::exec-success
{
	printf("%-6d %-6d %s\n", pid, curpsinfo->pr_ppid, curpsinfo->pr_psargs);
}

proc:::exit
{
	printf("%d exited with %d\n", pid, args[0]);
}

proc:::signal-send
/args[2] == SIGKILL/
{
	printf("%s sent SIGKILL to %s (%d)\n", execname, args[1]->pr_fname,
	    args[1]->pr_pid);
}

proc:::create
{
	@forks[execname] = count();
	self->child = args[0]->pr_pid;
}
