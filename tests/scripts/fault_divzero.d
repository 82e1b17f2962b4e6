#pragma D option quiet
BEGIN { x = 0; printf("%d\n", 10 / x); }
BEGIN { printf("next clause runs\n"); exit(0); }
