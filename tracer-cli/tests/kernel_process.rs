//! `-p PID`, `-c CMD`, how a run ends (exit(), the target's end, signals) with its exit
//! status, and that nothing tracer loaded or created in the kernel outlives it. Root only.

use crate::kernel_common::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn t(name: &str) -> String {
    target(name).display().to_string()
}

const READY: &str = "BEGIN { printf(\"ready\\n\"); }";

// ---- 2. -p PID ------------------------------------------------------------------------------

#[test]
fn grab_pid_traces_it_and_ends_when_it_exits() {
    // The target waits for `go` to exist, makes 7 getppid calls and exits.
    let go = scratch_file("go");
    let mut proc = Proc::start(&target("wait_then_getppid"), &[go.to_str().unwrap(), "7"]);
    let pid = proc.pid().to_string();
    let d = format!("{READY} syscall::getppid:entry /pid == $target/ {{ @ = count(); }} END {{ printf(\"end %d\\n\", $target); }}");
    let tracer = spawn(&["-q", "-p", &pid, "-n", &d]);
    tracer.wait_line("ready");
    std::fs::write(&go, "").unwrap();
    let out = tracer.finish(Duration::from_secs(30)).ok();
    assert_eq!(
        out.stdout,
        format!("ready\nend {pid}\n\n                7\n"),
        "{out}"
    );
    assert_eq!(out.stderr, "", "{out}");
    assert!(proc.wait(Duration::from_secs(5)).success());
}

#[test]
fn grab_pid_notice_when_it_exits() {
    let go = scratch_file("go");
    let mut proc = Proc::start(&target("wait_then_getppid"), &[go.to_str().unwrap(), "1"]);
    let pid = proc.pid();
    let tracer = spawn(&[
        "-p",
        &pid.to_string(),
        "-n",
        &format!("{READY} syscall::getppid:entry /pid == $target/ {{ }}"),
    ]);
    tracer.wait_stdout(Duration::from_secs(30), "ready", |s| s.contains("ready"));
    std::fs::write(&go, "").unwrap();
    let out = tracer.finish(Duration::from_secs(30)).ok();
    // A grabbed process is not tracer's child: its status is unknown, as in DTrace.
    assert_eq!(
        out.stderr,
        format!("tracer: description 'BEGIN ' matched 2 probes\ntracer: pid {pid} has exited\n"),
        "{out}"
    );
    proc.wait(Duration::from_secs(5));
}

#[test]
fn grab_pid_leaves_the_process_running() {
    let proc = Proc::start(&target("wait_then_getppid"), &["-"]);
    let pid = proc.pid();
    let out = run(&[
        "-q",
        "-p",
        &pid.to_string(),
        "-n",
        "tick-200ms { exit(0); }",
    ])
    .ok();
    assert_eq!(out.stdout, "\n", "{out}");
    assert!(alive(pid), "tracer -p killed the grabbed process");
}

#[test]
fn grab_dead_pid_fails() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let out = run(&[
        "-p",
        &pid.to_string(),
        "-n",
        "syscall::getppid:entry /pid == $target/ { }",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(
        out.stderr,
        format!("tracer: failed to grab pid {pid}: No such process\n"),
        "{out}"
    );
    assert_eq!(out.stdout, "", "{out}");
}

// ---- 3. how a run ends and its exit status --------------------------------------------------

#[test]
fn command_end_runs_end_and_prints_aggregations() {
    let cmd = format!("{} 3", t("getppid_loop"));
    let out = run(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "syscall::getppid:entry /pid == $target/ { @calls[execname] = count(); } END { printf(\"end\\n\"); }",
    ])
    .ok();
    assert_eq!(
        out.stdout,
        format!("end\n\n  {:<50} {:>16}\n", "getppid_loop", 3),
        "{out}"
    );
}

#[test]
fn exit_action_sets_the_status_and_runs_end() {
    let cmd = format!("{} 3", t("getppid_loop"));
    let out = run(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "syscall::getppid:entry /pid == $target/ { exit(5); } END { printf(\"end\\n\"); }",
    ]);
    assert_eq!(out.code(), 5, "{out}");
    assert_eq!(out.stdout, "end\n\n", "{out}");
}

#[test]
fn nothing_is_aggregated_after_exit() {
    let cmd = format!("{} 100", t("getppid_loop"));
    let out = run(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "syscall::getppid:entry /pid == $target/ { @ = count(); exit(5); } END { printf(\"end\\n\"); }",
    ]);
    assert_eq!(out.code(), 5, "{out}");
    // After exit() no probe but END fires: only the first call is counted.
    assert_eq!(out.stdout, "end\n\n                1\n", "{out}");
}

#[test]
fn target_status_is_not_tracers_status() {
    // wait_then_getppid / 0 3: "/" exists, so it exits at once with status 3.
    let cmd = format!("{} / 0 3", t("wait_then_getppid"));
    let out = run(&["-q", "-c", &cmd, "-n", "END { printf(\"end\\n\"); }"]).ok();
    assert_eq!(out.stdout, "end\n\n", "{out}");
    assert_eq!(out.stderr, "", "-q hides the exit notice\n{out}");
}

#[test]
fn command_exit_notices_use_dtrace_wording() {
    // dtrace(1): "has exited" for status 0, "exited with status N" otherwise, and
    // "terminated by SIGNAME" for a signal.
    let zero = format!("{} / 0 0", t("wait_then_getppid"));
    let out = run(&["-c", &zero, "-n", "END { }"]).ok();
    let pid = notice_pid(&out);
    assert_eq!(
        out.stderr,
        format!("tracer: description 'END ' matched 1 probe\ntracer: pid {pid} has exited\n"),
        "{out}"
    );

    let three = format!("{} / 0 3", t("wait_then_getppid"));
    let out = run(&["-c", &three, "-n", "END { }"]).ok();
    let pid = notice_pid(&out);
    assert_eq!(
        out.stderr,
        format!(
            "tracer: description 'END ' matched 1 probe\ntracer: pid {pid} exited with status 3\n"
        ),
        "{out}"
    );

    // Killed from outside: BEGIN prints the pid, the test sends SIGKILL.
    let forever = format!("{} -", t("wait_then_getppid"));
    let tracer = spawn(&[
        "-c",
        &forever,
        "-n",
        "BEGIN { printf(\"target %d\\n\", $target); }",
    ]);
    let pid_of = |s: &str| {
        s.lines()
            .find_map(|l| l.split_once(":BEGIN target ")?.1.trim().parse::<i32>().ok())
    };
    tracer.wait_stdout(Duration::from_secs(30), "the target pid", |s| {
        pid_of(s).is_some()
    });
    let pid = pid_of(&tracer.stdout()).unwrap();
    // SAFETY: the target is tracer's child, alive until tracer reaps it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = tracer.finish(Duration::from_secs(30)).ok();
    assert!(
        out.stderr
            .ends_with(&format!("tracer: pid {pid} terminated by SIGKILL\n")),
        "{out}"
    );
}

/// The pid in the last line of stderr ("tracer: pid N ...").
fn notice_pid(out: &Output) -> u32 {
    let last = out.stderr.lines().last().unwrap_or_default();
    last.strip_prefix("tracer: pid ")
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no exit notice\n{out}"))
}

#[test]
fn command_target_does_not_outlive_tracer() {
    let forever = format!("{} -", t("wait_then_getppid"));
    let out = run(&[
        "-q",
        "-c",
        &forever,
        "-n",
        "BEGIN { printf(\"%d\\n\", $target); } tick-300ms { exit(0); }",
    ])
    .ok();
    let pid: u32 = body(&out)[0].parse().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the -c target {pid} is still running"
    );
}

#[test]
fn command_target_does_not_outlive_sigint() {
    let forever = format!("{} -", t("wait_then_getppid"));
    let tracer = spawn(&[
        "-q",
        "-c",
        &forever,
        "-n",
        "BEGIN { printf(\"%d\\n\", $target); }",
    ]);
    tracer.wait_stdout(Duration::from_secs(30), "the target pid", |s| {
        s.lines().any(|l| l.parse::<u32>().is_ok())
    });
    let pid: u32 = tracer
        .stdout()
        .lines()
        .find_map(|l| l.parse().ok())
        .unwrap();
    tracer.signal(libc::SIGINT);
    tracer.finish(Duration::from_secs(30)).ok();
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the -c target {pid} is still running"
    );
}

#[test]
fn command_failing_exec_is_reported_after_compiling() {
    let out = run(&[
        "-q",
        "-c",
        "/nonexistent/tracer-itest",
        "-n",
        "syscall::getppid:entry { }",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(
        out.stderr,
        "tracer: failed to execute /nonexistent/tracer-itest: No such file or directory\n",
        "{out}"
    );
}

#[test]
fn command_failing_exec_is_reported_even_if_begin_exits() {
    // dtrace(1) creates the process before anything runs: a bad command fails the run.
    let out = run(&[
        "-q",
        "-c",
        "/nonexistent/tracer-itest",
        "-n",
        "BEGIN { exit(0); }",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(
        out.stderr,
        "tracer: failed to execute /nonexistent/tracer-itest: No such file or directory\n",
        "{out}"
    );
}

#[test]
fn script_file_with_target_and_pragmas() {
    let script = scratch_file("count.d");
    std::fs::write(
        &script,
        "#!/usr/bin/env tracer -s\n#pragma D option quiet\nsyscall::getppid:entry /pid == $target/ { @ = count(); }\nEND { printa(\"calls %@d\\n\", @); }\n",
    )
    .unwrap();
    let cmd = format!("'{}' 4", t("getppid_loop"));
    let out = run(&["-c", &cmd, "-s", script.to_str().unwrap()]).ok();
    assert_eq!(out.stdout, "calls 4\n\n", "{out}");
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn command_not_in_path() {
    let out = run(&[
        "-q",
        "-c",
        "no-such-command-tracer-itest",
        "-n",
        "BEGIN { exit(0); }",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.ends_with(
            "failed to execute no-such-command-tracer-itest: No such file or directory\n"
        ),
        "{out}"
    );
}

// ---- destructive actions (-w) -----------------------------------------------------------------

#[test]
fn destructive_actions_need_w() {
    let out = run(&["-q", "-n", "BEGIN { system(\"true\"); exit(0); }"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("destructive") && out.stderr.contains("-w"),
        "{out}"
    );
}

#[test]
fn destructive_system_runs_a_command() {
    let out = run(&[
        "-q",
        "-w",
        "-n",
        "BEGIN { system(\"echo hi from %s\", \"system\"); exit(0); }",
    ])
    .ok();
    assert_eq!(out.stdout, "hi from system\n\n", "{out}");
    assert_eq!(
        out.stderr, "tracer: allowing destructive actions\n",
        "{out}"
    );
}

#[test]
fn destructive_raise_signals_the_target() {
    // ustack_target waits for EOF on stdin (a pipe that stays open): only the signal ends it.
    let tracer = spawn_with(
        &[
            "-q",
            "-w",
            "-c",
            &t("ustack_target"),
            "-n",
            "syscall::getppid:entry /pid == $target/ { raise(9); }",
        ],
        In::Piped,
    );
    let out = tracer.finish_keeping_stdin(Duration::from_secs(30)).ok();
    assert_eq!(out.stdout, "\n", "{out}");
}

#[test]
fn destructive_stop_stops_the_target() {
    let tracer = spawn_with(
        &[
            "-q",
            "-w",
            "-c",
            &t("ustack_target"),
            "-n",
            "syscall::getppid:entry /pid == $target/ { stop(); printf(\"stopped %d\\n\", pid); }",
        ],
        In::Piped,
    );
    let pid_of = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("stopped ")?.parse::<u32>().ok())
    };
    tracer.wait_stdout(Duration::from_secs(30), "stopped PID", |s| {
        pid_of(s).is_some()
    });
    let pid = pid_of(&tracer.stdout()).unwrap();
    let state = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().chars().next().unwrap_or('?'))
            })
    };
    assert!(
        eventually(Duration::from_secs(10), || state() == Some('T')),
        "target {pid} is in state {:?}, not stopped",
        state()
    );
    tracer.signal(libc::SIGINT);
    tracer.finish(Duration::from_secs(30)).ok();
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the stopped -c target {pid} outlived tracer"
    );
}

// ---- 4. nothing is left in the kernel -------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Stop {
    Exit,
    Signal(i32),
}

/// Start tracer with a syscall probe and BEGIN, check its programs while it runs, stop it,
/// and check every one of them is gone and no tracefs probe event mentions it.
fn cleanup_case(stop: Stop) {
    let uprobes_before = tracefs_events("uprobe_events");
    let me = std::process::id().to_string();
    let d = format!("{READY} syscall::getppid:entry /pid == $1/ {{ @ = count(); }} syscall::getpgid:entry /pid == $1/ {{ exit(0); }}");
    let tracer = spawn(&["-q", "-n", &d, &me]);
    tracer.wait_line("ready");
    let tpid = tracer.pid();

    let ids: BTreeSet<u32> = bpf::program_ids_of(tpid);
    // One program per probe: BEGIN, END, getppid and getpgid (END may be loaded lazily).
    assert!(
        ids.len() >= 3,
        "BEGIN, getppid and getpgid programs should be loaded, found {ids:?}"
    );
    let all: BTreeSet<u32> = bpf::all_program_ids().into_iter().collect();
    assert!(
        ids.is_subset(&all),
        "tracer's programs {ids:?} are not listed by BPF_PROG_GET_NEXT_ID"
    );
    for &id in &ids {
        let name =
            bpf::name(id).unwrap_or_else(|| panic!("program {id} vanished while tracer runs"));
        assert!(
            name.strip_prefix('p')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            "program {id} is named {name:?}, not p<N>"
        );
    }
    let exe = std::fs::read_link(format!("/proc/{tpid}/exe")).unwrap();
    let mentions = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains(exe.to_str().unwrap()) || l.contains(&format!("_{tpid}")))
            .cloned()
            .collect()
    };
    assert_eq!(
        mentions(&tracefs_events("uprobe_events")),
        Vec::<String>::new(),
        "tracer created tracefs uprobe events"
    );

    // SAFETY: plain system calls; this test process matches `pid == $1`.
    unsafe { libc::syscall(libc::SYS_getppid) };
    let expected_status = match stop {
        Stop::Exit => {
            // SAFETY: as above.
            unsafe { libc::syscall(libc::SYS_getpgid, 0) };
            Some(0)
        }
        Stop::Signal(libc::SIGKILL) => {
            tracer.signal(libc::SIGKILL);
            None
        }
        Stop::Signal(sig) => {
            tracer.signal(sig);
            Some(0)
        }
    };
    let out = tracer.finish(Duration::from_secs(30));
    match expected_status {
        Some(code) => {
            assert_eq!(out.code(), code, "{out}");
            // The aggregation was printed at the end.
            assert_eq!(out.stdout, "ready\n\n                1\n", "{out}");
        }
        None => {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out}");
        }
    }
    let left = || {
        ids.iter()
            .copied()
            .filter(|&id| bpf::exists(id))
            .collect::<Vec<_>>()
    };
    // Release is immediate on close, but freeing may be deferred by RCU: allow a few seconds.
    assert!(
        eventually(Duration::from_secs(10), || left().is_empty()),
        "programs {:?} outlived tracer ({stop:?})",
        left()
    );
    assert_eq!(
        mentions(&tracefs_events("uprobe_events")),
        Vec::<String>::new(),
        "uprobe events left ({stop:?})"
    );
    assert_eq!(
        mentions(&tracefs_events("kprobe_events")),
        Vec::<String>::new(),
        "kprobe events left ({stop:?})"
    );
    let new_uprobes: Vec<String> = tracefs_events("uprobe_events")
        .into_iter()
        .filter(|l| !uprobes_before.contains(l))
        .collect();
    assert!(
        new_uprobes.iter().all(|l| !l.contains("tracer")),
        "uprobe events naming tracer appeared: {new_uprobes:?}"
    );
}

#[test]
fn cleanup_after_exit_action() {
    cleanup_case(Stop::Exit);
}

#[test]
fn cleanup_after_sigint() {
    cleanup_case(Stop::Signal(libc::SIGINT));
}

#[test]
fn cleanup_after_sigterm() {
    cleanup_case(Stop::Signal(libc::SIGTERM));
}

#[test]
fn cleanup_after_sigkill() {
    cleanup_case(Stop::Signal(libc::SIGKILL));
}

#[test]
fn cleanup_after_a_failed_attach() {
    // The syscall probe is loaded and attached, then the profile probe fails to enable (a
    // rate above perf_event_max_sample_rate): nothing of the first may stay.
    let before: BTreeSet<u32> = bpf::all_program_ids().into_iter().collect();
    let out = run(&[
        "-q",
        "-n",
        "syscall::getppid:entry { } profile-999999999 { }",
    ]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr
            .starts_with("tracer: failed to enable profile:::profile-999999999"),
        "{out}"
    );
    let is_tracers = |n: &str| {
        n.strip_prefix('p')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    // A program another tracer (held by a live process) loaded meanwhile is not a leak.
    let leaked = || -> Vec<u32> {
        bpf::all_program_ids()
            .into_iter()
            .filter(|id| !before.contains(id))
            .filter(|&id| bpf::name(id).is_some_and(|n| is_tracers(&n)))
            .filter(|&id| bpf::holders(id).is_empty())
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(10), || leaked().is_empty()),
        "programs {:?} outlived a failed tracer run\n{out}",
        leaked()
    );
}
