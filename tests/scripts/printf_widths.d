#pragma D option quiet
BEGIN {
	printf("[%5d] [%-5d] [%05d] [%+d] [%x] [%X] [%#o] [%c] [%%]\n", 42, 42, 42, 42, 255, 255, 8, 65);
	printf("[%10s] [%-10s] [%.3s] [%*d]\n", "right", "left", "truncate", 6, 7);
	printf("[%lld] [%llu] [%hd] [%ld]\n", -1LL, 18446744073709551615ULL, (short)3, 123456789012);
	exit(0);
}
