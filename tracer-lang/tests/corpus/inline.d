inline int MAX_LEN = 256;
inline string PREFIX = "tracer: ";
inline int64_t NSEC_PER_SEC = 1000000000;
inline int ENOENT = 2;
inline int *NULLP = 0;

syscall::open:return
/errno == ENOENT/
{
	printf("%s%s failed after %d s\n", PREFIX, execname, timestamp / NSEC_PER_SEC);
}
