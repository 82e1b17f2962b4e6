kprobe:do_sys_open
{
	@opens[comm] = count();
}

kretprobe:vfs_read
/retval > 0/
{
	@bytes = sum(retval);
}

tracepoint:syscalls:sys_enter_openat
{
	printf("%s %s\n", comm, str(args->filename));
}

fentry:vfs_read
{
	@reads[pid] = count();
}

profile:hz:99
{
	@samples[kstack] = count();
}

interval:s:1
{
	printa(@opens);
	clear(@opens);
}
