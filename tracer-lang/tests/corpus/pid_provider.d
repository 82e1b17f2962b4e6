pid$target:a.out:main:entry
{
	self->in_main = 1;
}

pid$target::malloc:entry
/self->in_main/
{
	self->size = arg0;
}

pid$target::malloc:return
/self->size/
{
	@allocs[ustack()] = sum(self->size);
	self->size = 0;
}

pid1234:libc.so.6:*:entry
{
	@funcs[probefunc] = count();
}

pid$1::$2:entry
/$$3 == execname && pid == $pid/
{
	printf("%s called in %d (%s)\n", $$2, $1, $$target);
}
