#pragma D option quiet
#pragma D option aggsortkey

syscall::write:entry
{
	@bytes[execname, pid] = sum(arg2);
	@calls[execname, pid] = count();
	@biggest[execname] = max(arg2);
	@smallest[execname] = min(arg2);
	@spread[execname] = stddev(arg2);
}

tick-5s
{
	printf("%-16s %6s %10s %8s\n", "COMMAND", "PID", "BYTES", "CALLS");
	printa("%-16s %6d %@10d %@8d\n", @bytes, @calls);
	printa("%s: largest %@d, smallest %@d\n", @biggest, @smallest);
	printa(@spread);
	trunc(@bytes, 10);
	clear(@calls);
	normalize(@biggest, 1024);
	denormalize(@biggest);
}

END
{
	trunc(@bytes);
	printa("%-16s %6d %@10d\n", @bytes);
}
