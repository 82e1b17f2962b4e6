/*
 * trunc() keeps the histograms printa would show first: ranked by their weight (the sum of
 * value × count), not by how many values they hold.
 */
#pragma D option quiet

BEGIN
{
	@[1] = quantize(1);
	@[1] = quantize(1);
	@[2] = quantize(1000);
	trunc(@, 1);
	printa(@);
	exit(0);
}
