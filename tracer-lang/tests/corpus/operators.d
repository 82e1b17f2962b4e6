BEGIN
{
	a = 1 + 2 * 3 - 4 / 2 % 3;
	b = (1 + 2) * 3;
	c = 1 << 2 + 1;
	d = x & 0xf | y ^ z;
	e = a < b == c > d;
	f = a && b || c && !d;
	g = a ^^ b && c;
	h = ~a + -b - +c;
	i = *ptr + &var - sizeof(int) + sizeof x;
	j = a->b.c[1]->d;
	k = f(a, b)[0];
	l = x++ + ++y;
	m = a <= b && c >= d || a != b;
	n = (a, b);
	o = -(-a);
	p = !!a;
	q = a >> 3 >> 1;
	r = a - b - c;
	s = a = b;
}
