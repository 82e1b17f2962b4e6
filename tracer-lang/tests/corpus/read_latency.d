#pragma D option quiet

syscall::read:entry
/execname == "bash"/
{
	self->ts = timestamp;
}

syscall::read:return
/self->ts/
{
	@time[execname] = quantize(timestamp - self->ts);
	@avg = avg(timestamp - self->ts);
	self->ts = 0;
}

tick-10s
{
	printa(@time);
	printa("average read latency: %@d ns\n", @avg);
	exit(0);
}
