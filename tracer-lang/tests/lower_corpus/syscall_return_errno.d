#pragma D option quiet
syscall::openat:return
/(int)arg1 < 0/
{
	@errs[errno] = count();
}
