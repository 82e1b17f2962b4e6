//! JIT-compiled code and the vdso in user stacks: frames named from perf maps
//! (/tmp/perf-PID.map) and from the vdso image, printed promptly after END.

use crate::kernel_common::*;
use std::time::{Duration, Instant};

/// A Node.js CPU profile names the hot JavaScript function, and the stacks print within a
/// bounded time after END although node has exited (its 99 MB binary was once re-read per
/// address, for minutes).
#[test]
fn node_profile_names_javascript_functions() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: node is not installed");
        return;
    }
    let js = scratch_file("busy.js");
    std::fs::write(
        &js,
        "function hotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); return s; }\n\
         const end = Date.now() + 1000; let x = 0;\n\
         while (Date.now() < end) x += hotLoop(100000);\n\
         console.log(x > 0 ? 'ok' : 'ok.');\n",
    )
    .unwrap();
    // --perf-basic-prof also writes V8's log, to the working directory unless told.
    let cmd = format!(
        "node --perf-basic-prof --no-logfile-per-isolate --logfile={} {}",
        scratch_file("v8.log").display(),
        js.display()
    );
    let t = spawn(&[
        "-q",
        "-n",
        "profile-997 /pid == $target/ { @[jstack()] = count(); } \
         END { printf(\"END-MARK\\n\"); }",
        "-c",
        &cmd,
    ]);
    t.wait_stdout(Duration::from_secs(30), "END", |s| s.contains("END-MARK"));
    let end = Instant::now();
    let out = t.finish(RUN_TIMEOUT).ok();
    let after_end = end.elapsed();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("JS:") && l.contains("hotLoop")),
        "no frame names hotLoop\n{out}"
    );
    assert!(
        after_end < Duration::from_secs(10),
        "{after_end:?} from END to exit\n{out}"
    );
}

/// Code in an anonymous executable page is named by the process's perf map, written in
/// Java's `0x` format among a malformed and a truncated line.
#[test]
fn hand_written_perf_map_names_anonymous_code() {
    let bin = target("jit_page");
    let cmd = format!("{} 1", bin.display());
    let out = run(&[
        "-q",
        "-n",
        "profile-997 /pid == $target && arg1/ { @[ufunc(arg1)] = count(); } \
         END { printf(\"target %d\\n\", $target); }",
        "-c",
        &cmd,
    ])
    .ok();
    if let Some(pid) = out.stdout.lines().find_map(|l| l.strip_prefix("target ")) {
        std::fs::remove_file(format!("/tmp/perf-{pid}.map")).ok();
    }
    let jit: u64 = out
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("jit_spin_loop"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    let total: u64 = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("target "))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert!(
        jit > 0 && jit * 2 > total,
        "most samples are in jit_spin_loop\n{out}"
    );
    assert!(!out.stdout.contains("truncated"), "{out}");
}

/// A loop on clock_gettime spends its time in the vdso, whose frames are named like
/// ``[vdso]`__vdso_clock_gettime+0x..``.
#[test]
fn vdso_frames_are_named() {
    let bin = target("vdso_loop");
    let cmd = format!("{} 1", bin.display());
    let out = run(&[
        "-q",
        "-n",
        "profile-997 /pid == $target/ { @[ustack()] = count(); }",
        "-c",
        &cmd,
    ])
    .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("[vdso]`") && l.contains("clock_gettime")),
        "no [vdso] frame\n{out}"
    );
}
