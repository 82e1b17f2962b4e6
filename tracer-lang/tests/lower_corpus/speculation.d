syscall::openat:entry
{
	self->spec = speculation();
	speculate(self->spec);
	printf("%s\n", copyinstr(arg1));
}
syscall::openat:return
/self->spec && (int)arg0 < 0/
{
	commit(self->spec);
	self->spec = 0;
}
syscall::openat:return
/self->spec/
{
	discard(self->spec);
	self->spec = 0;
}
