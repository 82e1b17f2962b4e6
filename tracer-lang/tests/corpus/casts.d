syscall::ioctl:entry
{
	a = (int)arg1;
	b = (unsigned int)arg1;
	c = (long long)arg2;
	d = (unsigned long long)arg2 >> 32;
	e = (uint8_t)arg0;
	f = (char *)arg2;
	g = (signed char)-1;
	h = (void *)0;
	i = (size_t)(arg0 + 1) * 2;
	j = (string)arg3;
	k = *(int *)copyin(arg2, sizeof(int));
	l = (int64_t)(int32_t)arg1;
	m = (uintptr_t)&x;
}
