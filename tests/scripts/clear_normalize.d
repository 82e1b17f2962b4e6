#pragma D option quiet
BEGIN { @a["x"] = sum(100); @a["y"] = sum(300); normalize(@a, 10); printa(@a); denormalize(@a); printa(@a); clear(@a); printa(@a); exit(0); }
