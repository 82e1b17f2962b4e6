/* status: 1 */
BEGIN { exit(x); }
