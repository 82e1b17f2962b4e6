#pragma D option quiet
syscall::write:entry
{
	this->n = arg2 * 2;
	this->s = execname;
	printf("%s %d\n", this->s, this->n + 1);
}
