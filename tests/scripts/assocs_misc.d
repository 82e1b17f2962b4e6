#pragma D option quiet
BEGIN { x[123, "foo"] = 123; self->x[456, "bar"] = 456; }
BEGIN { printf("x[] = %d\n", x[123, "foo"]); printf("self->x[] = %d\n", self->x[456, "bar"]); x[123, "foo"] = 0; printf("after delete: %d\n", x[123, "foo"]); exit(0); }
