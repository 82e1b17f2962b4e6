/* In a pid-namespace scope: the scope check comes first, pids are the namespace's. */
syscall::read:entry
/pid != 1/
{
	@[pid, tid, ppid] = count();
	printf("%d %d %u %d\n", hostpid, hosttid, pidns, cgroupid);
}
