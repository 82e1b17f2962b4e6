#pragma D option quiet
ERROR
{
	printf("fault %d in epid %d action %d at 0x%x\n", arg4, arg1, arg2, arg5);
}
syscall::read:entry
/arg2 == 0/
{
	x = arg0 / arg2;
	trace(*(int *)arg1);
}
