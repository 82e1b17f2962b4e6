BEGIN { }
BEGIN { trace("hello world"); }
BEGIN { @a = count(); }
BEGIN { trace(42); trace(-1); }
BEGIN { exit(0); }
