#pragma D option quiet
syscall::openat:entry
{
	printf("%s %s\n", execname, copyinstr(arg1));
}
