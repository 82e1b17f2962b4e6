#pragma D option quiet
BEGIN { @a = lquantize(0, -100, 1100, 100); @a = lquantize(350, -100, 1100, 100); @a = lquantize(-500, -100, 1100, 100); @a = lquantize(2000, -100, 1100, 100); exit(0); }
