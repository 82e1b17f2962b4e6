#pragma D option quiet
inline int LIMIT = 5;
inline string NAME = "inl";
BEGIN { printf("%d %s\n", LIMIT * 2, NAME); exit(0); }
