uprobe:/bin/bash:readline
{
	self->line = arg0;
}

uretprobe:/bin/bash:readline
/self->line/
{
	printf("%d: %s\n", pid, copyinstr(arg1));
	self->line = 0;
}

uretprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc
{
	@sizes = quantize(arg1);
}

usdt:/usr/bin/python3.11:python:function__entry
{
	printf("%s:%s\n", copyinstr(arg0), copyinstr(arg1));
}

uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:free, uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:realloc
/pid == $target/
{
	@calls[probefunc] = count();
}
