/* tracer: -q -x dynvarsize=100 */
BEGIN { a["Harding"] = 1; a["Hoover"] = 1; a["Nixon"] = 1; a["Bush"] = 1; }
BEGIN { exit(0); }
