BEGIN
{
	trace(123);
	trace("hello");
	trace(timestamp);
	printf("%d %s %x %c\n", pid, execname, 255, 'A');
}
