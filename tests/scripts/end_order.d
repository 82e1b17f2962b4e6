#pragma D option quiet
BEGIN { printf("Begin fired first\n"); }
tick-1ms { printf("tick fired second\n"); printf("Call exit\n"); exit(0); }
END { printf("End fired after exit\n"); }
END { printf("End2 fired after exit\n"); }
