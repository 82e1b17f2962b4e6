#pragma D option quiet
BEGIN { x = 3; if (x > 2) { y = 1; } else { y = 2; } if (x > 5) z = 1; else z = 2; printf("%d %d\n", y, z); exit(0); }
