#!/usr/bin/env -S tracer -s
/*
 * Java: garbage-collection pauses and the classes loaded, from HotSpot's USDT probes.
 *
 *   tracer -s examples/runtimes/java_gc.d -c 'java -cp . App'
 *
 * The hotspot provider lives in libjvm.so, which the java launcher dlopen()s after it starts:
 * with zdefs (-Z), tracer keeps these descriptions pending and enables them as libjvm.so is mapped,
 * before any of its code runs. HotSpot's strings are (pointer, length) pairs. Method,
 * allocation and monitor probes fire only with -XX:+ExtendedDTraceProbes.
 */
#pragma D option quiet
#pragma D option zdefs

hotspot$target:::gc-begin
{
	self->gc = timestamp;
	@collections[arg0 ? "full" : "young"] = count();
}

hotspot$target:::gc-end
/self->gc/
{
	@pause_us = quantize((timestamp - self->gc) / 1000);
	self->gc = 0;
}

hotspot$target:::class-loaded
{
	@classes = count();
}

END
{
	printa("collections: %-8s %@d\n", @collections);
	printa("classes loaded: %@d\n", @classes);
	printf("GC pauses (us):\n");
	printa(@pause_us);
}
