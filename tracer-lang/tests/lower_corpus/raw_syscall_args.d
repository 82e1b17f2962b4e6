#pragma D option quiet
syscall:::entry
/arg0 == 3/
{
	self->fd = arg0;
}
syscall:::return
/self->fd/
{
	printf("%s fd %d = %d errno %d\n", probefunc, self->fd, arg0, errno);
	self->fd = 0;
}
