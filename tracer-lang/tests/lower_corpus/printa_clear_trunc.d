#pragma D option quiet
syscall::write:entry
{
	@bytes[execname] = sum(arg2);
	@calls[execname, pid] = count();
}
tick-1s
{
	printa("%-16s %@d\n", @bytes);
	printa(@calls);
	clear(@bytes);
	trunc(@calls, 5);
}
