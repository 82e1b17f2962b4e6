#!/usr/bin/env -S tracer -s
/*
 * Node.js: a CPU profile of the JavaScript, sampled at 997 Hz, for 10 s or until the program
 * exits. The 20 hottest stacks are printed.
 *
 *   tracer -s examples/runtimes/node_profile.d -c 'node --perf-basic-prof app.js'
 *
 * --perf-basic-prof makes V8 write /tmp/perf-PID.map, which names the JIT-compiled code in
 * the stacks (JS:~handler /srv/app.js:12); add --interpreted-frames-native-stack to see
 * interpreted functions too. Without it the JavaScript frames are hex addresses. Node also
 * writes a V8 log into its working directory (--logfile=PATH --no-logfile-per-isolate moves it).
 */
#pragma D option quiet

profile-997
/pid == $target/
{
	@[ustack()] = count();
}

tick-10s
{
	exit(0);
}

END
{
	trunc(@, 20);
}
