/* Reads the file named by argv[1] to its end, in 4096-byte reads: the fbt tests know the
 * file's name and size, so they can check vfs_read's typed arguments and return values. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    char buf[4096];
    long total = 0, n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    close(fd);
    /* Nothing on stdout: it is tracer's, and the tests compare it exactly. */
    return total > 0 ? 0 : 3;
}
