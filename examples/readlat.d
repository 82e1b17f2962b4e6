#!/usr/bin/env -S tracer -s
/*
 * readlat.d: read(2) latency per process as power-of-two histograms (ns).
 * Usage: tracer -s readlat.d [-c cmd | -p pid]
 */
#pragma D option quiet

syscall::read:entry
{
	self->ts = timestamp;
}

syscall::read:return
/self->ts/
{
	@lat[execname] = quantize(timestamp - self->ts);
	@bytes[execname] = sum(arg0 > 0 ? arg0 : 0);
	self->ts = 0;
}

END
{
	printa(@lat);
	printf("%-16s %12s\n", "PROCESS", "BYTES");
	printa("%-16s %@12d\n", @bytes);
}
