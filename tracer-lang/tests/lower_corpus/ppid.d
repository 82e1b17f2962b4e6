#pragma D option quiet
syscall::getppid:entry
{
	printf("%d %d\n", pid, ppid);
}
