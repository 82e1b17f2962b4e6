/* tracer: -q */
/* The sum of squares passes 2^64: its high word takes the carry. */
BEGIN { @sd = stddev(3000000000); @sd = stddev(4000000000); @n = stddev(-4000000000); @n = stddev(-3000000000); exit(0); }
