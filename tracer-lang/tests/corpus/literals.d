BEGIN
{
	dec = 1234567890;
	hex = 0xdeadBEEF;
	oct = 0755;
	zero = 0;
	big = 18446744073709551615ULL;
	l = 10L;
	ul = 10ul;
	ll = 5ll;
	u = 7U;
	lu = 3lu;
	maxneg = -9223372036854775807 - 1;
	ch = 'z';
	tab = '\t';
	nul = '\0';
	hexch = '\x7f';
	octch = '\101';
	bs = '\\';
	str = "a\tb\\c\"d\x41\101\0end";
	cat = "one" "two"
	      "three";
}
