/* In a cgroup scope: bpf_current_task_under_cgroup first; BEGIN is not scoped. */
BEGIN
{
	printf("%s\n", cgroup);
}

syscall::read:entry
{
	@[container] = count();
}
