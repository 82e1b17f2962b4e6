/* Linear and log-linear distributions. */
syscall::write:entry
{
	self->start = vtimestamp;
}

syscall::write:return
/self->start/
{
	this->elapsed = vtimestamp - self->start;
	@linear[execname] = lquantize(arg0, 0, 1024, 64);
	@loglin = llquantize(this->elapsed, 10, 0, 6, 20);
	@pow2[probefunc] = quantize(this->elapsed / 1000);
	@neg = lquantize((int)arg0, -10, 10);
	self->start = 0;
}
