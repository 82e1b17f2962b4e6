#!/usr/bin/env -S tracer -s
/*
 * profile.d: sample kernel and user stacks at 99 Hz on every CPU for 10 seconds.
 * Usage: tracer -s profile.d
 */
#pragma D option quiet

profile-99
{
	@kernel[stack()] = count();
	@user[execname, ustack()] = count();
}

tick-10s
{
	trunc(@kernel, 10);
	trunc(@user, 10);
	exit(0);
}
