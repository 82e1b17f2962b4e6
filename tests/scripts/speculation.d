#pragma D option quiet
BEGIN { self->spec = speculation(); printf("Speculation ID: %d\n", self->spec); }
BEGIN { speculate(self->spec); printf("this was speculated\n"); }
BEGIN { commit(self->spec); self->spec2 = speculation(); }
BEGIN { speculate(self->spec2); printf("this is discarded\n"); }
BEGIN { discard(self->spec2); printf("done\n"); exit(0); }
