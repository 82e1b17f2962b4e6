#pragma D option quiet
ERROR { printf("Error fired: epid %d action %d fault %d addr 0x%x\n", arg1, arg2, arg4, arg5); exit(0); }
BEGIN { *(char *)NULL; exit(1); }
