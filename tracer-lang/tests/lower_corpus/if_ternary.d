#pragma D option quiet
syscall::read:return
{
	if (arg0 < 0) {
		err++;
	} else if (arg0 == 0) {
		eof++;
	} else {
		ok++;
	}
	x = arg0 > 100 ? 1 : 0;
}
