profile-997
/arg0/
{
	@kernel[stack()] = count();
}

profile-997
/arg1/
{
	@user[execname, ustack(10)] = count();
	@funcs[ufunc(arg1)] = count();
	@syms[usym(arg1)] = count();
}

profile-10ms
{
	@cpus[cpu] = count();
}

tick-100hz
{
	ticks++;
}

:::tick-1
{
	seconds++;
}

tick-1s
/seconds == 30/
{
	trunc(@kernel, 20);
	printa(@kernel);
	exit(0);
}
