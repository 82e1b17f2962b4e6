/* Variables typed by sema before lowering: a char array member makes a string variable, a
 * cast pointer reaches members through a thread-local, fbt's typed args[0] through a
 * clause-local, and an associative array takes a member string as its value. */
BEGIN
{
	x = curthread->comm;
	self->p = (struct task_struct *)curthread;
	trace(x);
	trace(self->p->pid);
}

fbt::wake_up_process:entry
{
	this->task = args[0];
	names[this->task->pid] = this->task->comm;
}
