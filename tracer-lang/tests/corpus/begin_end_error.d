dtrace:::BEGIN
{
	printf("Tracing... Hit Ctrl-C to end.\n");
	start = timestamp;
}

ERROR
{
	printf("error %d at %s: %s\n", arg4, probename, stringof(arg5));
	@errors[arg4] = count();
}

dtrace:::END
{
	printf("ran for %d ms\n", (timestamp - start) / 1000000);
}

END
/start/
{
	exit(0);
}
