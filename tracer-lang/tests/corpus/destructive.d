#pragma D option destructive
#pragma D option bufsize=4m
#pragma D option dynvarsize=16m
#pragma ident "example"

syscall::exec*:entry
/copyinstr(arg0) == "/usr/bin/malware"/
{
	stop();
	raise(SIGKILL);
	system("echo stopped %d", pid);
	copyout(arg0, arg1, 8);
	copyoutstr("safe", arg0, 5);
	panic_on = 0;
	freopen("/tmp/log.%d", pid);
	rand() % 2 ? chill(100) : breakpoint();
}
