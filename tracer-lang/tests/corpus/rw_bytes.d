/* Bytes read and written, by process, for every read/write flavour. */
syscall::[rw]*:entry
/execname != "dtrace"/
{
	self->fd = arg0;
}

syscall::read:return,
syscall::readv:return,
syscall::write:return,
syscall::writev:return
/self->fd && (int)arg0 > 0/
{
	@[execname, probefunc] = sum(arg0);
	self->fd = 0;
}

*:::entry
/0/
{
}
