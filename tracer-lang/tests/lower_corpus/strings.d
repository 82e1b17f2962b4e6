#pragma D option quiet
BEGIN
{
	s = strjoin("foo", "bar");
	printf("%s %d %s %s\n", s, strlen(s), substr(s, 2), substr(s, 1, 3));
	exit(0);
}
