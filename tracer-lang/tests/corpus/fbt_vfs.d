fbt::vfs_*:entry
{
	self->vfs[probefunc] = timestamp;
}

fbt::vfs_*:return
/self->vfs[probefunc]/
{
	@time[probefunc] = sum(timestamp - self->vfs[probefunc]);
	@stacks[probefunc, stack(5)] = count();
	self->vfs[probefunc] = 0;
}

fbt:kernel:do_exit:entry
{
	@exits[execname] = count();
	tracemem(arg0, 16);
	stack();
	ustack();
	jstack();
}

END
{
	normalize(@time, 1000);
	printa("%-24s %@12d us\n", @time);
	setopt("aggsortrev");
	printa(@stacks);
}
