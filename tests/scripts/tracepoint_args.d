/* tracer: -w -q */
/* Typed tracepoint arguments by name and by index; a char array reads as a string. */
tracepoint:sched:sched_process_exec
/args->filename == "/bin/true"/
{
	printf("exec %s pid-match %d\n", stringof(args[0]), args[1] == pid);
	exit(0);
}
BEGIN { system("/bin/true"); }
