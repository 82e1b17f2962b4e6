#pragma D option quiet
int g;
string s;
BEGIN { g = 41; g++; s = "global"; self->t = 10; this->c = 3; }
BEGIN /this->c == 0/ { printf("this-> is per firing: %d\n", this->c); }
BEGIN { self->t += 5; printf("%d %s %d %d\n", g, s, self->t, ++g); printf("%d\n", g--); printf("%d\n", g); exit(0); }
