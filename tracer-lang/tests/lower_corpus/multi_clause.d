BEGIN
{
	n = 0;
}
tick-10ms
/n < 3/
{
	n++;
}
tick-10ms
/n >= 3/
{
	exit(0);
}
END
{
	trace(n);
}
