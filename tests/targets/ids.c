/*
 * ids FILE: call getppid(2) once and append "pid ppid tid uid gid comm" of this process to
 * FILE; then fork a child that renames itself "ids-child", switches to uid/gid 65534 and
 * does the same. The parent waits for the child.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void report(int fd)
{
	char comm[32] = { 0 }, line[160];
	prctl(PR_GET_NAME, comm);
	long ppid = syscall(SYS_getppid); /* the one traced call */
	int n = snprintf(line, sizeof(line), "%d %ld %ld %d %d %s\n", getpid(), ppid,
			 (long)syscall(SYS_gettid), getuid(), getgid(), comm);
	if (write(fd, line, n) != n)
		_exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return 2;
	report(fd);
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_NAME, "ids-child");
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		report(fd);
		_exit(0);
	}
	int status = 0;
	waitpid(child, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}
