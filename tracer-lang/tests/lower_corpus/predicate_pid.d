syscall::read:entry
/pid == 1234 && arg2 > 4096/
{
	trace(arg2);
}
