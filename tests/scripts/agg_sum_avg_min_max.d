/* tracer: -q */
int i;
tick-1ms /i < 10/ { @s = sum(i * 100); @a = avg(i * 100); @mi = min(i * 100); @ma = max(i * 100); @sd = stddev(i * 100); i++; }
tick-1ms /i == 10/ { exit(0); }
