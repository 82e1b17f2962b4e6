#pragma D option quiet
BEGIN {
	printf("%d %d %d %d %d\n", 7 + 3, 7 - 10, 6 * 7, -7 / 2, -7 % 3);
	printf("%d %d %d %d\n", 1 << 10, -16 >> 2, 0xff & 0x0f, 0xf0 | 0x0f);
	printf("%d %d %d %d\n", 5 ^ 3, ~0, !0, !7);
	printf("%d %d %d\n", 3 > 2 ? 10 : 20, 1 && 0, 0 || 2);
	printf("%d %d\n", 1 ^^ 1, 0 ^^ 1);
	printf("%u %d %d\n", (unsigned int)-1, (char)300, (short)70000);
	printf("%d %d\n", sizeof(int), sizeof(long long));
	x = 10; x += 5; x -= 3; x *= 2; x /= 4; x %= 4; x <<= 3; x |= 1; x &= 0xf; x ^= 2;
	printf("%d\n", x);
	exit(0);
}
