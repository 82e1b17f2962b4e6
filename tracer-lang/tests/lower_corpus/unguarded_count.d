syscall::read:entry
{
	@[execname] = count();
}
