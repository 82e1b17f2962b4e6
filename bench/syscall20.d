/*
 * Start-up benchmark (cargo xtask bench, case 1b): twenty clauses on syscall probes with
 * strings and predicates; syscall20.bt is the same script in bpftrace's syntax. $1 is the
 * pid of the benchmark, which calls getsid() and getpgid() every millisecond: the first and
 * the last clause answer them, so both lines have been printed only once every probe is
 * live, whichever order a tool attaches its probes in.
 */
#pragma D option quiet

syscall::getsid:entry /pid == $1/ { printf("first\n"); }
syscall::openat:entry /execname != "tracer-bench"/ { @opens[execname, copyinstr(arg1)] = count(); }
syscall::read:entry /arg2 > 4096/ { @bigread[execname] = count(); }
syscall::write:entry /pid != 1/ { @wbytes[execname] = sum(arg2); }
syscall::close:entry /arg0 > 2/ { @closes = count(); }
syscall::execve:entry { printf("%s exec %s\n", execname, copyinstr(arg0)); }
syscall::newfstatat:entry /execname == "ls"/ { @stat[copyinstr(arg1)] = count(); }
syscall::mkdirat:entry { @mkdir[execname, copyinstr(arg1)] = count(); }
syscall::unlinkat:entry /uid == 0/ { @unlink[copyinstr(arg1)] = count(); }
syscall::renameat2:entry { @rename[execname, copyinstr(arg1), copyinstr(arg3)] = count(); }
syscall::connect:entry /pid > 1/ { @connect[execname] = count(); }
syscall::accept4:entry /execname != "sshd"/ { @accept[execname] = count(); }
syscall::read:return /(long)arg0 > 0/ { @rbytes[execname] = sum(arg0); }
syscall::kill:entry /arg1 == 9/ { printf("%s kill -9 %d\n", execname, arg0); }
syscall::chdir:entry { @cd[execname, copyinstr(arg0)] = count(); }
syscall::clock_nanosleep:entry /execname != "sleep"/ { @sleeps[execname] = count(); }
syscall::mmap:entry /arg1 > 1048576/ { @bigmmap[execname] = sum(arg1); }
syscall::ioctl:entry /execname == "bash"/ { @ioctl[arg1] = count(); }
syscall::exit_group:entry { @exits[execname] = count(); }
syscall::getpgid:entry /pid == $1/ { printf("live\n"); }
