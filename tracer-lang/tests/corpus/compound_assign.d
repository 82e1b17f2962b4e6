BEGIN
{
	x = 10;
	x += 5;
	x -= 3;
	x *= 2;
	x /= 4;
	x %= 7;
	x &= 0xff;
	x |= 0x100;
	x ^= 1;
	x <<= 2;
	x >>= 1;
	self->count++;
	self->count--;
	++y;
	--y;
	a = b = c = 0;
	total[probefunc] += arg0;
	this->t = x, y;
}
