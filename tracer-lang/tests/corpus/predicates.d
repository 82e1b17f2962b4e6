syscall::read:entry,
syscall::write:entry
/pid == $target && (arg2 > 1024 || arg2 == 0) && !(execname == "sshd")/
{
	@io[probefunc] = count();
}

syscall::open*:entry
/uid != 0 ^^ gid != 0/
{
	printf("%s opened %s\n", execname, copyinstr(arg0));
}

proc:::exec-success
/curpsinfo->pr_ppid == 1 && zonename == "global" && arg0 >= 0 && arg0 <= 100/
{
	trace(curpsinfo->pr_psargs);
}

syscall:::entry
/execname != "dtrace" && tid % 2 == 1/
{
	@[probefunc] = count();
}
