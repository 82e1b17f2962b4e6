#pragma D option strsize=512

BEGIN
{
	greeting = "hello, " "world";
	escaped = "tab\there\nnewline \"quoted\" back\\slash \x41\102\0";
	empty = "";
	s = strjoin("/tmp/", "file");
	n = strlen(s);
	i = index(s, "file");
	sub = substr(s, 1, 3);
	up = toupper(sub);
	printf("%s %d %d %s\n", s, n, i, up);
	c = 'a';
	nl = '\n';
	quote = '\'';
	printf("%c%c", c, nl);
}

syscall::open:entry
{
	path = copyinstr(arg0);
	name = basename(path);
	dir = dirname(path);
	self->file = stringof(args[0]);
	this->same = strstr(path, "/etc") != NULL ? 1 : 0;
	printf("%s in %s\n", name, dir);
}
