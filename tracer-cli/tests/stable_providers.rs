//! DTrace's stable providers (proc, sched, io) on the real kernel: each test makes the events
//! happen (forks, execs, signals, sleeps, a direct write) and checks what tracer reports.

use crate::kernel_common::tracer;
use std::process::Command;

/// The whitespace-separated words of every line starting with `tag`.
fn lines<'a>(out: &'a str, tag: &str) -> Vec<Vec<&'a str>> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.first() == Some(&tag))
        .collect()
}

#[test]
fn proc_exec_exit_reasons() {
    // The shell runs /bin/true (exec, exec-success, a normal exit), fails to exec a path
    // that does not exist (ENOENT), and kills a sleeping child (CLD_KILLED) once it has
    // exec'd: a kill during the exec fails it with the kernel's internal ERESTARTNOINTR.
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        "sh -c 'sleep 0.2; /bin/true; /nonexistent/prog; sleep 5 & sleep 0.5; kill -9 $!; wait; exit 0'",
        "-n",
        r#"proc:::exec /ppid == $target/ { printf("exec %s\n", args[0]); }
           proc:::exec-success /ppid == $target/ { printf("success %s\n", execname); }
           proc:::exec-failure /ppid == $target/ { printf("failure %d\n", args[0]); }
           proc:::exit /ppid == $target/ { printf("exit %d %s\n", args[0], execname); }"#,
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(out.contains("exec /bin/true\n"), "{out}");
    assert!(out.contains("success true\n"), "{out}");
    assert!(out.contains("exec /nonexistent/prog\n"), "{out}");
    assert_eq!(lines(&out, "failure"), vec![vec!["failure", "2"]], "{out}");
    let exits = lines(&out, "exit");
    // CLD_EXITED for true and for the shell that failed to exec; CLD_KILLED for the sleep.
    assert!(exits.contains(&vec!["exit", "1", "true"]), "{out}");
    assert_eq!(exits.iter().filter(|w| w[1] == "2").count(), 1, "{out}");
    assert!(exits.iter().all(|w| w[1] == "1" || w[1] == "2"), "{out}");
}

#[test]
fn proc_create_start_and_signal_send() {
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        "sh -c 'sleep 0.2; sleep 5 & sleep 0.2; kill -9 $!; wait; exit 0'",
        "-n",
        r#"proc:::create /pid == $target/ { printf("create %d %d %d\n", args[0]->pr_pid, args[0]->pr_ppid, $target); }
           proc:::start /ppid == $target/ { printf("start %d %d %s\n", pid, tid, execname); }
           proc:::signal-send /args[2] == 9 && pid == $target/ { printf("signal %d %d %s\n", args[1]->pr_pid, args[2], args[1]->pr_fname); }"#,
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let creates = lines(&out, "create");
    assert!(!creates.is_empty(), "{out}");
    for c in &creates {
        assert_eq!(c[2], c[3], "the parent is the shell: {out}");
    }
    // start runs "in" the new process: pid and tid are the child's, as create named it.
    let starts = lines(&out, "start");
    let created: Vec<&str> = creates.iter().map(|c| c[1]).collect();
    let started: Vec<&str> = starts.iter().map(|s| s[1]).collect();
    assert_eq!(created, started, "{out}");
    assert!(starts.iter().all(|s| s[1] == s[2]), "{out}");
    // The shell kills its background sleep, the last child it made before `kill`.
    let sig = lines(&out, "signal");
    assert_eq!(sig.len(), 1, "{out}");
    assert_eq!(sig[0][2], "9");
    assert_eq!(sig[0][3], "sleep", "{out}");
    assert!(created.contains(&sig[0][1]), "{out}");
}

#[test]
fn sched_off_cpu_on_cpu_idiom() {
    // DTrace's idiom: off-cpu runs in the thread leaving the CPU, on-cpu in the one coming
    // back, so `self->ts` set at off-cpu is seen again at on-cpu. sleep 0.3 is off its CPU
    // for about 300ms once.
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        "sleep 0.3",
        "-n",
        r#"sched:::off-cpu /pid == $target/ { self->ts = timestamp; }
           sched:::on-cpu /self->ts/ { @m[execname, pid == $target] = max(timestamp - self->ts); self->ts = 0; }
           sched:::sleep /pid == $target/ { @s = count(); }
           sched:::wakeup /args[1]->pr_pid == $target/ { @w = count(); }
           END { printa("max %s %d %@d\n", @m); printa("sleeps %@d\n", @s); printa("wakeups %@d\n", @w); }"#,
    ]);
    assert_eq!(code, 0, "{err}\n{out}");
    let maxes = lines(&out, "max");
    // Every on-cpu that found self->ts is the target's own thread (the key is the incoming thread).
    assert!(!maxes.is_empty(), "{out}");
    assert!(maxes.iter().all(|m| m[2] == "1"), "{out}");
    let longest: u64 = maxes
        .iter()
        .map(|m| m[3].parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert!((250_000_000..3_000_000_000).contains(&longest), "{out}");
    assert!(maxes.iter().any(|m| m[1] == "sleep"), "{out}");
    let count = |tag| -> u64 {
        lines(&out, tag)
            .first()
            .map_or(0, |w| w[1].parse().unwrap())
    };
    assert!(count("sleeps") >= 1, "{out}");
    assert!(count("wakeups") >= 1, "{out}");
}

#[test]
fn io_start_done_on_a_direct_write() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("stable-io-{}", std::process::id()));
    // O_DIRECT goes to the disk at once; a filesystem without it (tmpfs) has no block I/O.
    let probe = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096", "count=1", "oflag=direct"])
        .arg(format!("of={}", file.display()))
        .output()
        .unwrap();
    if !probe.status.success() {
        eprintln!(
            "skipped: {} does not take O_DIRECT writes: {}",
            dir.display(),
            String::from_utf8_lossy(&probe.stderr)
        );
        return;
    }
    let cmd = format!(
        "dd if=/dev/zero of={} bs=1M count=1 oflag=direct conv=fsync",
        file.display()
    );
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        r#"io:::start /pid == $target && args[0]->b_flags & 0x100/ { started[args[0]->b_blkno] = 1; @s = sum(args[0]->b_bcount); @dev[args[1]->dev_name] = count(); }
           io:::done /started[args[0]->b_blkno]/ { @d = sum(args[0]->b_bcount); @e = max(args[0]->b_error); started[args[0]->b_blkno] = 0; }
           END { printa("started %@d\n", @s); printa("done %@d\n", @d); printa("errors %@d\n", @e); printa("dev %s %@d\n", @dev); }"#,
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}\n{out}");
    let started = lines(&out, "started");
    if started.is_empty() {
        eprintln!(
            "skipped: no block I/O from dd was seen (no block device under {}?)",
            dir.display()
        );
        return;
    }
    // The 1 MiB of data, plus whatever metadata the filesystem writes for dd's fsync.
    let bytes: u64 = started[0][1].parse().unwrap();
    assert!((1048576..1048576 + 65536).contains(&bytes), "{out}");
    assert_eq!(lines(&out, "done")[0][1], started[0][1], "{out}");
    assert_eq!(lines(&out, "errors")[0][1], "0", "{out}");
    assert_eq!(lines(&out, "dev")[0].len(), 3, "a device name: {out}");
}

#[test]
fn listing_shows_the_providers_and_argument_types() {
    let (out, err, code) = tracer(&["-l", "-n", "sched:::"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        names,
        ["dequeue", "enqueue", "off-cpu", "on-cpu", "preempt", "sleep", "wakeup"]
    );
    let (out, err, code) = tracer(&["-lv", "-n", "proc:::signal-send"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("args[1]: pid_t (pid)"), "{out}");
    assert!(out.contains("args[2]: int (sig)"), "{out}");
    let (out, _, _) = tracer(&["-lv", "-n", "io:::start"]);
    assert!(out.contains("args[0]: struct request * (buf)"), "{out}");
}

#[test]
fn a_name_the_probe_does_not_have_is_an_error_naming_those_it_has() {
    let (out, err, code) = tracer(&["-e", "-n", "proc:::signal-send { trace(args->nope); }"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("no argument named nope; it has: lwp, pid, sig"),
        "{err}"
    );
}
