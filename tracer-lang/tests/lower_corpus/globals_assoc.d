#pragma D option quiet
syscall::write:entry
{
	total += arg2;
	bytes[pid, execname] += arg2;
	last = execname;
}
END
{
	printf("%d %s %d\n", total, last, bytes[1, "init"]);
}
