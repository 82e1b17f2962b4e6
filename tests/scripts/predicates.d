#pragma D option quiet
int i;
tick-1ms /i < 10/ { i++; }
tick-1ms /i >= 3 && i <= 6 && i != 5/ { printf("%d", i); }
tick-1ms /i == 10/ { printf("\n"); exit(0); }
