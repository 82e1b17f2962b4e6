int x;
self int y;
this string z;
uint64_t a[string, int];
int arr[5];
static int counter;
extern int kernel_hz;
int *ptr, count;
unsigned long long big;
self string names[int];

syscall::read:entry
{
	this int tmp;
	this uint64_t start;
	self int depth;
	this->start = timestamp;
	tmp = arr[2] + x;
	a[execname, pid] = tmp;
	z = "abc";
}
