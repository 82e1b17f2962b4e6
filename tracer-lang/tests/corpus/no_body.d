syscall::read:entry
BEGIN /1/;
syscall::write:entry,
syscall::pwrite:entry
END
/0/
{
	exit(0);
}
tick-1s /i++ > 10/
