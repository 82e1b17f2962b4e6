#pragma D option quiet
int a;
BEGIN
{
	a = -17;
	b = 5;
	printf("%d %d %d %d\n", a / 4, a % 4, a * b - 3, (a + b) << 2);
	printf("%u %d\n", (unsigned int)a / 4, a >> 1);
	exit(0);
}
