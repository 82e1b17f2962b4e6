//! Case 1: start-up, from exec to probes live.

use super::report::{median, ms, ratio, x, Section};
use super::session::{Out, Session, Tool};
use super::{Env, Findings};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    True,
    Begin,
    BeginCpu,
    Live20,
    Exit20,
    Compile20,
    List,
}

pub fn run(env: &Env, found: &mut Findings) -> Section {
    let rounds = if env.quick { 3 } else { 7 };
    let mut times: BTreeMap<(Case, Tool), Vec<f64>> = BTreeMap::new();
    let mut list_lines: BTreeMap<Tool, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let fail = |what: &str, tool: Tool, s: &Session, failures: &mut Vec<String>| {
        let msg = format!("{} {what} failed: {}", tool.name(), s.stderr_tail());
        if !failures.contains(&msg) {
            eprintln!("bench: {msg}");
            failures.push(msg);
        }
    };
    let pid = super::sys::my_pid().to_string();
    let d20 = env.root.join("bench/syscall20.d");
    let bt20 = env.root.join("bench/syscall20.bt");

    for round in 0..rounds {
        eprintln!("bench: start-up round {}/{rounds}", round + 1);
        // The harness's own floor: exec to exit of a program that does nothing.
        if let Ok(mut s) = Session::spawn(Path::new("true"), &[], Out::Pipe) {
            if let Some((at, _)) = s.wait_exit(Duration::from_secs(10)) {
                let t = at.duration_since(s.start).as_secs_f64();
                times.entry((Case::True, Tool::Tracer)).or_default().push(t);
                times
                    .entry((Case::True, Tool::Bpftrace))
                    .or_default()
                    .push(t);
            }
        }
        for tool in Tool::BOTH {
            // (a) BEGIN { exit(0); }: exec to exit.
            let args: Vec<String> = match tool {
                Tool::Tracer => vec!["-q".into(), "-n".into(), "BEGIN { exit(0); }".into()],
                Tool::Bpftrace => vec!["-e".into(), "BEGIN { exit(); }".into()],
            };
            if let Ok(mut s) = Session::spawn(env.bin(tool), &args, Out::Pipe) {
                match s.wait_exit(Duration::from_secs(60)) {
                    Some((at, e)) if e.success() => {
                        times
                            .entry((Case::Begin, tool))
                            .or_default()
                            .push(at.duration_since(s.start).as_secs_f64());
                        times
                            .entry((Case::BeginCpu, tool))
                            .or_default()
                            .push(e.rusage.cpu_secs());
                        found
                            .mem
                            .record("BEGIN { exit(0); }", tool, Some(e.rusage.maxrss_kib()));
                    }
                    _ => fail("BEGIN", tool, &s, &mut failures),
                }
            }

            // (b) 20 clauses: exec until both the first and the last clause have answered the
            // bench's getsid()/getpgid(); then SIGINT until exit (detach and final output).
            let args: Vec<String> = match tool {
                Tool::Tracer => vec!["-s".into(), d20.display().to_string(), pid.clone()],
                Tool::Bpftrace => vec![bt20.display().to_string(), pid.clone()],
            };
            if let Ok(mut s) = Session::spawn(env.bin(tool), &args, Out::Pipe) {
                match s.wait_triggered(&["first", super::session::LIVE], Duration::from_secs(60)) {
                    Some(live) => {
                        times
                            .entry((Case::Live20, tool))
                            .or_default()
                            .push(live.as_secs_f64());
                        if round == 0 {
                            // Case 7: the programs of the 20 clauses.
                            found.progs.insert(
                                ("syscall20".into(), tool),
                                super::overhead::programs(s.pid),
                            );
                        }
                        let int = std::time::Instant::now();
                        super::sys::signal(s.pid, super::sys::SIGINT);
                        if let Some((at, e)) = s.wait_exit(Duration::from_secs(20)) {
                            times
                                .entry((Case::Exit20, tool))
                                .or_default()
                                .push(at.duration_since(int).as_secs_f64());
                            found.mem.record(
                                "20-clause syscall script",
                                tool,
                                Some(e.rusage.maxrss_kib()),
                            );
                        }
                    }
                    None => fail("20-clause script", tool, &s, &mut failures),
                }
                s.stop();
            }

            // (b') the same script compiled only: tracer -e, bpftrace --emit-elf (dry run).
            let args: Vec<String> = match tool {
                Tool::Tracer => vec![
                    "-e".into(),
                    "-s".into(),
                    d20.display().to_string(),
                    pid.clone(),
                ],
                Tool::Bpftrace => vec![
                    "--emit-elf".into(),
                    env.scratch.join("syscall20.elf").display().to_string(),
                    bt20.display().to_string(),
                    pid.clone(),
                ],
            };
            if let Ok(mut s) = Session::spawn(env.bin(tool), &args, Out::Pipe) {
                match s.wait_exit(Duration::from_secs(60)) {
                    Some((at, e)) if e.success() => times
                        .entry((Case::Compile20, tool))
                        .or_default()
                        .push(at.duration_since(s.start).as_secs_f64()),
                    _ => fail("compile-only", tool, &s, &mut failures),
                }
            }

            // (c) -l of every syscall probe.
            let args: Vec<String> = match tool {
                Tool::Tracer => vec!["-l".into(), "-n".into(), "syscall:::".into()],
                Tool::Bpftrace => vec!["-l".into(), "tracepoint:syscalls:*".into()],
            };
            if let Ok(mut s) = Session::spawn(env.bin(tool), &args, Out::Pipe) {
                match s.wait_exit(Duration::from_secs(60)) {
                    Some((at, e)) if e.success() => {
                        times
                            .entry((Case::List, tool))
                            .or_default()
                            .push(at.duration_since(s.start).as_secs_f64());
                        let n = s
                            .stdout_lines()
                            .iter()
                            .filter(|l| !l.trim().is_empty())
                            .count();
                        list_lines.insert(tool, n);
                    }
                    _ => fail("-l", tool, &s, &mut failures),
                }
            }
        }
    }

    let mut sec = Section::new(
        "1. Start-up (median wall time)",
        &["case", "tracer", "bpftrace", "tracer/bpftrace"],
    );
    let label = |c: Case| -> String {
        match c {
            Case::True => "`true` (the harness's own floor): exec → exit".into(),
            Case::Begin => "`BEGIN { exit(0); }`: exec → exit".into(),
            Case::BeginCpu => "`BEGIN { exit(0); }`: CPU time (user + system)".into(),
            Case::Live20 => "20-clause syscall script: exec → probes live".into(),
            Case::Exit20 => "20-clause syscall script: SIGINT → exit (detach, final output)".into(),
            Case::Compile20 => {
                "20-clause script compiled only (`tracer -e`, `bpftrace --emit-elf`)".into()
            }
            Case::List => format!(
                "`-l` every syscall probe: exec → exit ({} / {} lines)",
                list_lines.get(&Tool::Tracer).copied().unwrap_or(0),
                list_lines.get(&Tool::Bpftrace).copied().unwrap_or(0)
            ),
        }
    };
    for c in [
        Case::True,
        Case::Begin,
        Case::BeginCpu,
        Case::Live20,
        Case::Compile20,
        Case::Exit20,
        Case::List,
    ] {
        let t = times.get(&(c, Tool::Tracer)).and_then(|v| median(v));
        let b = times.get(&(c, Tool::Bpftrace)).and_then(|v| median(v));
        let r = if c == Case::True {
            String::new()
        } else {
            x(ratio(t, b))
        };
        sec.row(vec![label(c), ms(t), ms(b), r]);
        if matches!(c, Case::Begin | Case::Live20 | Case::List) {
            found.startup.push((label(c), t, b));
        }
    }
    sec.note(format!(
        "{rounds} runs of each, alternating tracer and bpftrace. \"Probes live\" is the time until both the \
         script's first clause (`syscall::getsid:entry /pid == $1/`) and its last \
         (`syscall::getpgid:entry /pid == $1/`) have printed their line in answer to the \
         benchmark's own getsid()/getpgid() calls, made every millisecond (bench/syscall20.d, \
         bench/syscall20.bt); each line comes through the tool's output path."
    ));
    for f in failures {
        sec.note(f);
    }
    sec
}
