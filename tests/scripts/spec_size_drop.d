/* tracer: -q -x specsize=20 */
BEGIN { s = speculation(); }
BEGIN { speculate(s); printf("kept\n"); }
BEGIN { speculate(s); printf("dropped: the buffer is full\n"); }
BEGIN { commit(s); printf("committed\n"); exit(0); }
