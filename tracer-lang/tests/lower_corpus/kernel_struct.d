/* Kernel structs from BTF: members through pointers, a char array read as a string and
 * indexed, a bitfield, fbt's typed args[] through fentry, and a kretprobe return value. */
fbt::wake_up_process:entry
{
	printf("%s %d %d %c\n", args[0]->comm, args[0]->real_parent->pid, args[0]->flags,
	    curthread->comm[1]);
}

fbt::wake_up_process:return
/arg1 != 0/
{
	this->t = (struct task_struct *)curthread;
	@[this->t->comm] = count();
}
