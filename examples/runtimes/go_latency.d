#!/usr/bin/env -S tracer -s
/*
 * Go: latency of each function of package main, in microseconds.
 *
 *   tracer -s examples/runtimes/go_latency.d -c './server'      (or -p PID)
 *
 * Return probes sit on each function's return instructions: Go moves goroutine stacks, and a
 * uretprobe's rewritten return address would make its runtime abort. Arguments follow Go's
 * register ABI (arg0 = RAX, arg1 = RBX, ...), so a string argument is copyinstr(argN, argN+1).
 * A goroutine can move between threads while it waits, so entry and return are paired by
 * goroutine: uregs[R_R14] holds the running goroutine (g) on amd64 (uregs[R_X28] on arm64).
 * A recursive function is timed from its innermost call.
 */
#pragma D option quiet

pid$target::main.*:entry
{
	start[uregs[R_R14], probefunc] = timestamp;
}

pid$target::main.*:return
/start[uregs[R_R14], probefunc]/
{
	@us[probefunc] = quantize((timestamp - start[uregs[R_R14], probefunc]) / 1000);
	start[uregs[R_R14], probefunc] = 0;
}

END
{
	printf("latency of main.* functions (us):\n");
	printa(@us);
}
