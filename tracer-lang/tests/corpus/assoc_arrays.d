/* Associative arrays with tuple keys. */
uint64_t bytes[string, int];
int seen[int];

syscall::write:entry
{
	bytes[execname, pid] += arg2;
	seen[pid] = 1;
	last[execname, tid, probefunc] = timestamp;
}

syscall::write:return
/seen[pid]/
{
	trace(bytes[execname, pid]);
	seen[pid] = 0;
}

END
{
	printf("%d\n", bytes["bash", 1]);
}
