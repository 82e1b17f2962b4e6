#pragma D option quiet
int i;
tick-1ms /i < 1000/ { @a[i] = quantize(i); i += 100; }
tick-1ms /i == 1000/ { exit(0); }
