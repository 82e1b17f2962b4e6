syscall::openat:entry
/execname == "bash"/
{
	printf("%s opened\n", execname);
}
