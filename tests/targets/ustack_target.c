/*
 * ustack_target: main -> middle -> leaf -> getppid(2), then read standard input until EOF
 * (so the test decides when the process exits) and exit 0. Built with frame pointers.
 */
#include <unistd.h>
#include <sys/syscall.h>

__attribute__((noinline)) void leaf(void)
{
	syscall(SYS_getppid);
}

__attribute__((noinline)) void middle(void)
{
	leaf();
}

int main(void)
{
	char buf[64];
	middle();
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
