/* tracer: -q */
/* Negative values and the ends of the range: the kernel keeps min/max as biased unsigned
   words, and a new key's value is inserted, later ones are atomic maxima. */
BEGIN
{
	@mi = min(-5); @mi = min(3); @mi = min(-2);
	@ma = max(-7); @ma = max(-9);
	@top = max(0x7fffffffffffffff); @top = max(0);
	@bottom = min(-0x7fffffffffffffff - 1); @bottom = min(0);
	@lowmax = max(-0x7fffffffffffffff - 1);
	@highmin = min(0x7fffffffffffffff);
	@k["a"] = max(1); @k["b"] = max(-1); @k["a"] = max(-100);
	exit(0);
}
