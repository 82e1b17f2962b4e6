#pragma D option quiet
BEGIN { @["neg"] = quantize(-3); @["neg"] = quantize(-100); @["pos"] = quantize(7); exit(0); }
