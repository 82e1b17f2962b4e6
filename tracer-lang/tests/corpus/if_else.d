syscall::read:return
{
	if (arg0 < 0) {
		@errors[errno] = count();
	} else if (arg0 == 0) {
		@eof = count();
	} else {
		@bytes = sum(arg0);
		if (arg0 > 65536)
			@big = count();
	}

	if (self->ts)
		trace(timestamp - self->ts);
	else
		trace(0);

	if (execname == "sshd") {
		printf("ssh read\n")
	}
	this->x = 1
}
