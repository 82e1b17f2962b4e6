#!/usr/bin/env -S tracer -s
/*
 * Python: function calls, module imports and garbage collections, from CPython's USDT probes.
 *
 *   tracer -s examples/runtimes/python_calls.d -c 'python3.11 app.py'      (or -p PID)
 *
 * The interpreter must be built with --with-dtrace (Debian's python3.11 is; a pyenv build
 * usually is not: tracer -l -c 'python3 -c 0' -n 'python$target:::' tells). CPython 3.11 to
 * 3.14 fire function-entry for few calls, not for a Python function calling another
 * (CPython issue gh-98894); imports and collections fire on every version. For a profile of
 * 3.12+ by function, run it with -X perf and aggregate ustack(): its frames read
 * py::func:/path/app.py.
 */
#pragma D option quiet

python$target:::function-entry
{
	@calls[copyinstr(arg0), copyinstr(arg1)] = count();
}

python$target:::import-find-load-start
{
	self->import = timestamp;
}

python$target:::import-find-load-done
/self->import/
{
	@import_us[copyinstr(arg0)] = sum((timestamp - self->import) / 1000);
	self->import = 0;
}

python$target:::gc-start
{
	self->gc = timestamp;
}

python$target:::gc-done
/self->gc/
{
	@gc_us = quantize((timestamp - self->gc) / 1000);
	self->gc = 0;
}

END
{
	printf("%-50s %-30s %8s\n", "FILE", "FUNCTION", "CALLS");
	printa("%-50s %-30s %@8d\n", @calls);
	printf("\n%-50s %8s\n", "MODULE IMPORTED", "US");
	printa("%-50s %@8d\n", @import_us);
	printf("\ngarbage collections (us):\n");
	printa(@gc_us);
}
