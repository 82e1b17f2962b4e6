/* open_missing PATH: open(2) PATH (which should not exist); exit 0 if that failed. */
#include <fcntl.h>

int main(int argc, char **argv)
{
	int fd = open(argc > 1 ? argv[1] : "/nonexistent/tracer-itest", O_RDONLY);
	return fd < 0 ? 0 : 1;
}
