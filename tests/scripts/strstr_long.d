#pragma D option quiet
/* A literal needle is found anywhere in the string, beyond the first 32 bytes too. */
BEGIN
{
	s = "the quick brown fox jumps over the lazy dog; the end of a long string";
	printf("%d %d %d %d\n", index(s, "the"), rindex(s, "the"), index(s, "the", 5), index(s, "zzz"));
	printf("%s|\n", strstr(s, "lazy"));
	exit(0);
}
