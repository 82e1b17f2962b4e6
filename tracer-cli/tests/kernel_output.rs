//! The profile provider's timing, `--format json`, `-l`, drop reports, stacks, `-o`, and the
//! command line's error messages, against the real kernel. Root only.

use crate::kernel_common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn t(name: &str) -> String {
    target(name).display().to_string()
}

/// Rows `KEY VALUE` of a single-integer-key aggregation.
fn int_rows(out: &Output) -> BTreeMap<i64, i64> {
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace().map(|x| {
                x.parse::<i64>()
                    .unwrap_or_else(|_| panic!("bad row {l:?}\n{out}"))
            });
            (
                f.next().unwrap(),
                f.next().unwrap_or_else(|| panic!("bad row {l:?}\n{out}")),
            )
        })
        .collect()
}

// ---- 5. profile and tick --------------------------------------------------------------------

#[test]
fn profile_fires_on_every_cpu_at_its_rate() {
    // A software clock event does not fire on an idle CPU on every kernel (it does not in
    // some VMs), so keep every CPU busy while sampling.
    let _busy = Busy::every_cpu();
    let out = run(&[
        "-q",
        "-n",
        "profile-99 { @[cpu] = count(); } tick-500ms { exit(0); }",
    ])
    .ok();
    let rows = int_rows(&out);
    for cpu in online_cpus() {
        let n = rows.get(&(cpu as i64)).copied().unwrap_or(0);
        // 99 Hz for 0.5 s is about 49.
        assert!(
            (25..=75).contains(&n),
            "profile-99 fired {n} times on CPU {cpu} in 0.5 s\n{out}"
        );
    }
    assert_eq!(rows.len(), online_cpus().len(), "{out}");
}

#[test]
fn profile_bpftrace_names() {
    let _busy = Busy::every_cpu();
    let out = run(&[
        "-q",
        "-n",
        "profile:hz:99 { @[cpu] = count(); } interval:ms:500 { exit(0); }",
    ])
    .ok();
    let rows = int_rows(&out);
    assert_eq!(rows.len(), online_cpus().len(), "{out}");
    assert!(rows.values().all(|&n| (25..=75).contains(&n)), "{out}");
}

#[test]
fn tick_fires_on_time_with_one_pc_set() {
    let start = Instant::now();
    let out = run(&["-q", "-n", "tick-100ms { @ = count(); printf(\"%d %d\\n\", arg0 != 0, arg1 != 0); } tick-550ms { exit(0); }"]).ok();
    let elapsed = start.elapsed();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let n = lines.iter().filter(|l| l.len() == 3).count();
    assert!(
        (4..=6).contains(&n),
        "tick-100ms fired {n} times in 0.55 s\n{out}"
    );
    // arg0 is the kernel PC, arg1 the user PC: exactly one is set.
    for l in &lines[..n] {
        assert!(*l == "1 0" || *l == "0 1", "{out}");
    }
    // Then DTrace's empty line and the count.
    assert_eq!(lines[n..], ["", &format!("{n:>17}")], "{out}");
    assert!(
        elapsed >= Duration::from_millis(500),
        "tick-550ms exited after {elapsed:?}"
    );
}

#[test]
fn tick_interval_bpftrace_name_and_probe_names() {
    let out = run(&["-q", "-n", "interval:ms:100 { printf(\"%s:%s:%s:%s\\n\", probeprov, probemod, probefunc, probename); exit(0); }"]).ok();
    assert_eq!(out.stdout, "profile:::tick-100ms\n\n", "{out}");
}

// ---- 9. JSON ---------------------------------------------------------------------------------

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l:?}\n{out}"))
        })
        .collect()
}

#[test]
fn json_printf_trace_and_typed_aggregation_keys() {
    let cmd = format!("{} 3", t("getppid_loop"));
    let out = run(&[
        "--format",
        "json",
        "-q",
        "-c",
        &cmd,
        "-n",
        "BEGIN { printf(\"hello %d\\n\", 42); trace(\"s\"); trace(-7); }
         syscall::getppid:entry /pid == $target/ { @c[execname, pid == $target] = count(); @s = sum(5); @q = quantize(3); }",
    ])
    .ok();
    let v = json_lines(&out);
    assert_eq!(v.len(), 6, "{out}");
    let begin = |i: usize, ty: &str| {
        assert_eq!(v[i]["type"], ty, "{out}");
        assert_eq!(v[i]["probe"], "dtrace:::BEGIN", "{out}");
        assert!(v[i]["cpu"].is_u64(), "{out}");
    };
    begin(0, "printf");
    assert_eq!(v[0]["msg"], "hello 42\n");
    begin(1, "trace");
    assert_eq!(v[1]["value"], "s");
    begin(2, "trace");
    assert_eq!(v[2]["value"], -7);
    let agg = |name: &str| {
        v.iter()
            .find(|x| x["type"] == "aggregation" && x["name"] == name)
            .unwrap_or_else(|| panic!("no {name}\n{out}"))
    };
    let c = agg("@c");
    assert_eq!(c["func"], "count");
    assert_eq!(
        c["entries"],
        serde_json::json!([{"keys": ["getppid_loop", 1], "value": 3}]),
        "{out}"
    );
    let s = agg("@s");
    assert_eq!(
        s["entries"],
        serde_json::json!([{"keys": [], "value": 15}]),
        "{out}"
    );
    let q = agg("@q");
    assert_eq!(q["func"], "quantize");
    assert_eq!(
        q["entries"][0]["value"]["buckets"],
        serde_json::json!([{"min": 2, "max": 3, "count": 3}]),
        "{out}"
    );
}

/// Why kernel stacks from syscall probes are empty on this kernel, if they are. Before 6.12
/// (Debian's 6.1, for one), a syscalls:sys_enter_* program's context carries the *user*
/// registers of the system call, and bpf_get_stack finds no kernel stack from user
/// registers; newer kernels hand the program kernel registers instead.
fn no_syscall_kernel_stacks() -> Option<String> {
    let (major, minor) = tracer_runtime::host::kernel_version();
    ((major, minor) < (6, 12)).then(|| {
        format!(
            "kernel {major}.{minor}: syscall tracepoints give BPF programs user registers, so there is no kernel stack to take (kernel stacks from syscall probes need 6.12 or newer)"
        )
    })
}

/// Kernel frames every system call's stack has on this arch, from the entry code up.
#[cfg(target_arch = "x86_64")]
const SYSCALL_PATH: &[&str] = &["vmlinux`do_syscall_64+0x", "vmlinux`entry_SYSCALL_64"];
#[cfg(target_arch = "aarch64")]
const SYSCALL_PATH: &[&str] = &["vmlinux`el0_svc+0x", "vmlinux`el0t_64_sync"];

#[test]
fn json_probe_records_and_stacks() {
    let cmd = format!("{} 1", t("getppid_loop"));
    let out = run(&[
        "--format",
        "json",
        "-q",
        "-c",
        &cmd,
        "-n",
        "syscall::getppid:entry /pid == $target/ { trace(execname); stack(); }",
    ])
    .ok();
    let v = json_lines(&out);
    assert_eq!(v.len(), 2, "{out}");
    assert_eq!(v[0]["type"], "trace");
    assert_eq!(v[0]["probe"], "syscall:vmlinux:getppid:entry");
    assert_eq!(v[0]["value"], "getppid_loop");
    assert_eq!(v[1]["type"], "stack");
    assert_eq!(v[1]["user"], false);
    if let Some(why) = no_syscall_kernel_stacks() {
        eprintln!("skipped: {why}");
        return;
    }
    let frames = v[1]["frames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.starts_with(SYSCALL_PATH[0]))),
        "{out}"
    );
}

#[test]
fn json_printa_and_keys_of_several_types() {
    let out = run(&[
        "--format",
        "json",
        "-n",
        "BEGIN { @a[1, \"x\"] = sum(3); @m = min(-5); printa(@a); exit(0); }",
    ])
    .ok();
    let v = json_lines(&out);
    assert_eq!(v.len(), 2, "{out}");
    assert_eq!(v[0]["type"], "printa", "{out}");
    assert_eq!(
        v[0]["aggregations"][0]["entries"],
        serde_json::json!([{"keys": [1, "x"], "value": 3}]),
        "{out}"
    );
    assert_eq!(v[1]["name"], "@m", "{out}");
    assert_eq!(
        v[1]["entries"],
        serde_json::json!([{"keys": [], "value": -5}]),
        "{out}"
    );
    // Notices stay on stderr, as text.
    assert_eq!(
        out.stderr, "tracer: description 'BEGIN ' matched 1 probe\n",
        "{out}"
    );
}

// ---- 10. -l -----------------------------------------------------------------------------------

const LIST_HEADER: &str =
    "   ID   PROVIDER            MODULE                          FUNCTION NAME";

fn list_row(id: &str, provider: &str, module: &str, function: &str, name: &str) -> String {
    format!("{id:>5} {provider:>10} {module:>17} {function:>33} {name}")
}

#[test]
fn list_syscall_probes() {
    let out = run(&["-l", "-n", "syscall::getppid:"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], LIST_HEADER);
    for (line, name) in lines[1..].iter().zip(["entry", "return"]) {
        let id = line[..5].trim();
        assert!(id.parse::<u32>().is_ok(), "{out}");
        assert_eq!(
            *line,
            list_row(id, "syscall", "vmlinux", "getppid", name),
            "{out}"
        );
    }
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn list_begin() {
    let out = run(&["-l", "-n", "BEGIN"]).ok();
    assert_eq!(
        out.stdout,
        format!(
            "{LIST_HEADER}\n{}\n",
            list_row("1", "dtrace", "", "", "BEGIN")
        ),
        "{out}"
    );
}

#[test]
fn list_a_clause_lists_its_probe_only() {
    let out = run(&["-l", "-n", "syscall::getppid:entry { x = 1; }"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].ends_with(" getppid entry"), "{out}");
}

#[test]
fn list_by_provider_module_function_and_id() {
    // -P, -m, -f and -i name probes as dtrace(1) does; each is its own description.
    let out = run(&["-l", "-P", "dtrace"]).ok();
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(
        rows,
        [
            list_row("1", "dtrace", "", "", "BEGIN"),
            list_row("2", "dtrace", "", "", "END"),
            list_row("3", "dtrace", "", "", "ERROR"),
        ],
        "{out}"
    );
    let out = run(&["-l", "-f", "syscall::getppid"]).ok();
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].ends_with(" getppid entry") && rows[1].ends_with(" getppid return"),
        "{out}"
    );
    let id = rows[1][..5].trim().to_string();
    let out = run(&["-l", "-i", &id, "-i", "2"]).ok();
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].ends_with(" getppid return") && rows[1].ends_with(" END"),
        "{out}"
    );
    let out = run(&["-l", "-m", "syscall:vmlinux"]).ok();
    assert!(out.stdout.lines().count() > 100, "{out}");
    let out = run(&["-l", "-i", "999999999"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("invalid probe identifier 999999999"),
        "{out}"
    );
    // Without -l they enable the probes with the default action.
    let out = run(&["-f", "syscall::getppid", "-c", &t("getppid_loop")]);
    assert!(out.stdout.contains("getppid:entry"), "{out}");
}

#[test]
fn list_no_match_fails() {
    let out = run(&["-l", "-n", "syscall::no_such_syscall_itest:"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("syscall::no_such_syscall_itest:"),
        "{out}"
    );
    assert!(out.stdout.lines().nth(1).is_none(), "{out}");
}

#[test]
fn list_ids_are_the_ids_probes_fire_with() {
    let id_in = |out: &Output| -> String {
        let row = out
            .stdout
            .lines()
            .find(|l| l.ends_with(" getppid entry"))
            .unwrap_or_else(|| panic!("{out}"));
        row[..5].trim().to_string()
    };
    let filtered = id_in(&run(&["-l", "-n", "syscall::getppid:"]).ok());
    let all = id_in(&run(&["-l"]).ok());
    let out = run(&[
        "-q",
        "-c",
        &t("getppid_loop"),
        "-n",
        "syscall::getppid:entry /pid == $target/ { printf(\"%d\\n\", id); }",
    ])
    .ok();
    let fired = body(&out)[0].clone();
    assert_eq!(
        (filtered.as_str(), all.as_str()),
        (fired.as_str(), fired.as_str()),
        "-l IDs vs id at run time"
    );
    // BEGIN, END and ERROR keep 1, 2, 3.
    assert_ne!(fired, "1");
}

#[test]
fn list_into_a_closed_pipe_is_quiet() {
    // Like dtrace(1) (killed by SIGPIPE), tracer must not complain when its reader goes away.
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: closing the read end we own; the write end is handed to the child.
    unsafe { libc::close(fds[0]) };
    use std::os::fd::FromRawFd;
    // SAFETY: fds[1] is a descriptor we own and give away.
    let w = unsafe { std::process::Stdio::from_raw_fd(fds[1]) };
    let out = std::process::Command::new(tracer_bin())
        .args(["-l"])
        .stdout(w)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "", "tracer -l into a closed pipe complained");
}

// ---- 11. drops ----------------------------------------------------------------------------------

/// Run a flood of `n` printf records through a tiny buffer set with `buf_args`; every record
/// is either printed or counted in a drop report.
fn drops_case(buf_args: &[&str], n: u64) {
    let cmd = format!("{} {n}", t("getppid_loop"));
    let mut args: Vec<&str> = vec!["-q"];
    args.extend_from_slice(buf_args);
    let d = "syscall::getppid:entry /pid == $target/ { printf(\"%d %d %s\\n\", timestamp, pid, \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"); }";
    args.extend_from_slice(&["-c", &cmd, "-n", d]);
    let out = run(&args).ok();
    let printed = body(&out).len() as u64;
    let mut dropped = 0u64;
    for l in out.stderr.lines() {
        let rest = l
            .strip_prefix("tracer: ")
            .unwrap_or_else(|| panic!("unexpected stderr line {l:?}\n{out}"));
        let (count, cpu) = rest
            .split_once(" drops on CPU ")
            .or_else(|| rest.split_once(" drop on CPU "))
            .unwrap_or_else(|| panic!("not a drop report: {l:?}"));
        assert!(
            cpu.parse::<u32>().is_ok_and(|c| online_cpus().contains(&c)),
            "{l:?}"
        );
        let count: u64 = count.parse().unwrap();
        assert!(count > 0, "{l:?}");
        if count == 1 {
            assert!(l.contains(" drop on CPU "), "{l:?}");
        }
        dropped += count;
    }
    assert!(
        dropped > 0,
        "{n} records through a 4 KiB buffer were not dropped\n{}",
        out.stderr
    );
    assert_eq!(
        printed + dropped,
        n,
        "printed {printed} + dropped {dropped} != {n}: records were lost silently"
    );
}

#[test]
fn drops_are_reported_with_b() {
    drops_case(&["-b", "4k"], 20_000);
}

#[test]
fn drops_are_reported_with_x_bufsize() {
    drops_case(&["-x", "bufsize=4k"], 20_000);
}

// ---- 12. stack() and ustack() -------------------------------------------------------------

/// The frames of a stack() or ustack() block: after an empty line, lines indented 14 spaces.
fn frames(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("              "))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn ustack_of_a_live_target_names_its_functions() {
    // ustack_target reads tracer's stdin (inherited) until EOF: it lives until finish().
    let tracer = spawn_with(
        &[
            "-q",
            "-c",
            &t("ustack_target"),
            "-n",
            "syscall::getppid:entry /pid == $target/ { ustack(); }",
        ],
        In::Piped,
    );
    tracer.wait_stdout(Duration::from_secs(30), "a user stack with main", |s| {
        s.contains("`main+")
    });
    let out = tracer.finish(Duration::from_secs(30)).ok();
    let f = frames(&out.stdout);
    assert!(out.stdout.starts_with("\n              "), "{out}");
    let pos = |prefix: &str| {
        f.iter()
            .position(|x| x.starts_with(prefix))
            .unwrap_or_else(|| panic!("no frame {prefix}\n{out}"))
    };
    // leaf() is the caller of libc's syscall(), which has no frame pointer: its frame is not
    // recoverable by a frame-pointer walk.
    assert!(
        pos("libc.so.6`syscall+0x") < pos("ustack_target`middle+0x"),
        "{out}"
    );
    assert!(
        pos("ustack_target`middle+0x") < pos("ustack_target`main+0x"),
        "{out}"
    );
}

#[test]
fn ustack_of_an_exited_target_names_its_functions() {
    // stdin is /dev/null: the target exits right after the traced call.
    let out = run(&[
        "-q",
        "-c",
        &t("ustack_target"),
        "-n",
        "syscall::getppid:entry /pid == $target/ { ustack(); }",
    ])
    .ok();
    let f = frames(&out.stdout);
    assert!(
        f.iter().any(|x| x.starts_with("ustack_target`main+0x")),
        "{out}"
    );
}

#[test]
fn ustack_and_stack_frame_limits() {
    let tracer = spawn_with(
        &[
            "-q",
            "-c",
            &t("ustack_target"),
            "-n",
            "syscall::getppid:entry /pid == $target/ { ustack(2); printf(\"--\\n\"); stack(2); printf(\"==\\n\"); }",
        ],
        In::Piped,
    );
    tracer.wait_line("==");
    let out = tracer.finish(Duration::from_secs(30)).ok();
    let (user, kernel) = out.stdout.split_once("--\n").unwrap();
    assert_eq!(frames(user).len(), 2, "{out}");
    match no_syscall_kernel_stacks() {
        Some(why) => eprintln!("skipped: the kernel half: {why}"),
        None => assert_eq!(frames(kernel).len(), 2, "{out}"),
    }
}

#[test]
fn ustack_aggregation_keys_of_a_command_are_symbolized() {
    // The classic `dtrace -c cmd -n '... { @[ustack()] = count(); }'`: the aggregation is
    // printed after the command has exited.
    let out = run(&[
        "-q",
        "-c",
        &t("ustack_target"),
        "-n",
        "syscall::getppid:entry /pid == $target/ { @[ustack()] = count(); }",
    ])
    .ok();
    let f = frames(&out.stdout);
    assert!(
        f.iter().any(|x| x.starts_with("ustack_target`main+0x")),
        "{out}"
    );
    assert!(
        f.iter().any(|x| x.starts_with("ustack_target`middle+0x")),
        "{out}"
    );
}

#[test]
fn stack_frame_options() {
    let tracer = spawn_with(
        &[
            "-q",
            "-x",
            "ustackframes=2",
            "-x",
            "stackframes=1",
            "-c",
            &t("ustack_target"),
            "-n",
            "syscall::getppid:entry /pid == $target/ { ustack(); printf(\"--\\n\"); stack(); printf(\"==\\n\"); }",
        ],
        In::Piped,
    );
    tracer.wait_line("==");
    let out = tracer.finish(Duration::from_secs(30)).ok();
    let (user, kernel) = out.stdout.split_once("--\n").unwrap();
    assert_eq!(frames(user).len(), 2, "{out}");
    match no_syscall_kernel_stacks() {
        Some(why) => eprintln!("skipped: the kernel half: {why}"),
        None => assert_eq!(frames(kernel).len(), 1, "{out}"),
    }
}

#[test]
fn stack_shows_the_kernel_system_call_path() {
    let out = run(&[
        "-q",
        "-c",
        &t("getppid_loop"),
        "-n",
        "syscall::getppid:entry /pid == $target/ { stack(); }",
    ])
    .ok();
    if let Some(why) = no_syscall_kernel_stacks() {
        eprintln!("skipped: {why}");
        return;
    }
    let f = frames(&out.stdout);
    assert!(out.stdout.starts_with("\n              vmlinux`"), "{out}");
    assert!(f.iter().all(|x| x.starts_with("vmlinux`")), "{out}");
    for frame in SYSCALL_PATH {
        assert!(f.iter().any(|x| x.starts_with(frame)), "{frame}\n{out}");
    }
    // No frame is reported twice in a row (arm64 repeats the first one unless tracer drops
    // the copy).
    assert!(f.windows(2).all(|w| w[0] != w[1]), "{out}");
}

// ---- -o ------------------------------------------------------------------------------------------

#[test]
fn output_file_is_appended_to() {
    let file = scratch_file("out.txt");
    let f = file.to_str().unwrap();
    run(&[
        "-q",
        "-o",
        f,
        "-n",
        "BEGIN { printf(\"a\\n\"); @ = count(); exit(0); }",
    ])
    .ok();
    let out = run(&["-q", "-o", f, "-n", "BEGIN { printf(\"b\\n\"); exit(0); }"]).ok();
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "a\n\n                1\nb\n\n"
    );
}

// ---- 13. command-line errors ------------------------------------------------------------------

#[test]
fn error_unknown_option() {
    let out = run(&["-x", "nosuchopt", "-n", "BEGIN { exit(0); }"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr
            .starts_with("tracer: failed to set -x nosuchopt: "),
        "{out}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert_eq!(out.stdout, "", "{out}");
}

#[test]
fn error_bad_option_value() {
    let out = run(&["-b", "lots", "-n", "BEGIN { exit(0); }"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.starts_with("tracer: failed to set -b: "),
        "{out}"
    );
}

#[test]
fn error_missing_script_file() {
    let out = run(&["-s", "/nonexistent/tracer-itest.d"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.starts_with(
            "tracer: failed to open /nonexistent/tracer-itest.d: No such file or directory"
        ),
        "{out}"
    );
}

#[test]
fn error_missing_script_file_wording() {
    let out = run(&["-s", "/nonexistent/tracer-itest.d"]);
    assert_eq!(
        out.stderr,
        "tracer: failed to open /nonexistent/tracer-itest.d: No such file or directory\n",
        "{out}"
    );
}

#[test]
fn error_target_macro_without_target() {
    let out = run(&["-n", "syscall::getppid:entry /pid == $target/ { }"]);
    assert_eq!(out.code(), 1, "{out}");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(first.contains("$target"), "{out}");
    assert!(
        first.contains("-c") && first.contains("-p"),
        "the message should say how to give a target\n{out}"
    );
    assert_eq!(out.stdout, "", "{out}");
}

#[test]
fn error_unknown_output_format() {
    let out = run(&["--format", "xml", "-n", "BEGIN { exit(0); }"]);
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(
        out.stderr, "tracer: unknown output format \"xml\" (use text or json)\n",
        "{out}"
    );
}

#[test]
fn error_c_and_p_together() {
    let out = run(&["-c", "true", "-p", "1", "-n", "BEGIN { exit(0); }"]);
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(
        out.stderr, "tracer: -c and -p cannot be used together\n",
        "{out}"
    );
}

#[test]
fn error_no_probes() {
    let out = run(&["-q"]);
    assert_ne!(out.code(), 0, "{out}");
    assert_eq!(out.stderr, "tracer: no probes specified\n", "{out}");
}
