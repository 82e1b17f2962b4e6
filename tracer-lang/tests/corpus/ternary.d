syscall::read:return
{
	result = arg0 < 0 ? "error" : arg0 == 0 ? "eof" : "data";
	size = arg0 > 4096 ? 4096 : arg0;
	flag = arg0 ? 1 : 0;
	printf("%s %d\n", errno != 0 ? "failed" : "ok", size);
	@kind[arg0 < 0 ? "negative" : "positive"] = count();
}
