#pragma D option quiet
BEGIN {
	printf("%s\n", strjoin("foo", "baz"));
	printf("%d\n", strlen("hello, world"));
	printf("[%s] [%s] [%s]\n", substr("tracer", 2), substr("tracer", 0, 3), substr("tracer", -3));
	printf("%s|%s\n", strchr("fooeyfooeyfoo", 'y'), strrchr("fooeyfooeyfoo", 'e'));
	printf("%s|%s\n", strstr("abcdefabc", "def"), strstr("abc", "x"));
	printf("%d %d %d\n", index("hello hello", "llo"), rindex("hello hello", "llo"), index("abc", "z"));
	printf("%s %s %s %s\n", basename("/usr/lib/libc.so"), dirname("/usr/lib/libc.so"), basename("/"), dirname("file"));
	printf("%s %s %s\n", lltostr(0), lltostr(-123456789), lltostr(9223372036854775807));
	printf("%d %d\n", "abc" == "abc", "abc" < "abd");
	printf("%x %x\n", htons(0x1234), htonl(0x12345678));
	exit(0);
}
