//! Case 3 (uprobe overhead on a function called in a loop) and case 8 (attaching to many
//! functions at once), with tracer's pid provider and bpftrace's uprobes.

use super::report::{median, ms, ns, ratio, x, Section};
use super::session::{Out, Session, Tool};
use super::{Env, Findings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn spawn(env: &Env, tool: Tool, args: &[String]) -> Option<Session> {
    Session::spawn(env.bin(tool), args, Out::Pipe).ok()
}

fn parse_ns(lines: &[String]) -> Option<f64> {
    lines.iter().find_map(|l| {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix("ns_per_call="))
            .and_then(|v| v.parse().ok())
    })
}

/// A C program with `n` functions `bench_f0`… that prints `started`, calls each once and
/// prints `done`.
fn many_functions(env: &Env, n: usize) -> Option<PathBuf> {
    let mut src = String::from("#include <stdio.h>\n");
    for i in 0..n {
        src.push_str(&format!(
            "__attribute__((noinline)) long bench_f{i}(long x) {{ __asm__ volatile(\"\" ::: \"memory\"); return x + {i}; }}\n"
        ));
    }
    src.push_str("int main(void) {\n  long s = 0;\n  printf(\"started\\n\");\n  fflush(stdout);\n");
    for i in 0..n {
        src.push_str(&format!("  s += bench_f{i}(s);\n"));
    }
    src.push_str("  printf(\"done %ld\\n\", s);\n  return 0;\n}\n");
    let c = env.scratch.join(format!("many_functions_{n}.c"));
    let bin = env.scratch.join(format!("many_functions_{n}"));
    std::fs::write(&c, src).ok()?;
    let ok = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O1", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .ok()?
        .success();
    ok.then_some(bin)
}

pub fn run(env: &Env, found: &mut Findings) -> (Section, Section) {
    let (n, rounds) = if env.quick {
        (30_000u64, 3)
    } else {
        (200_000u64, 5)
    };
    let cpu = env.loop_cpu.to_string();
    let target = |bin: &Path| format!("{} {n} {cpu}", bin.display());
    let mut notes: Vec<String> = Vec::new();
    let note = |s: String, notes: &mut Vec<String>| {
        if !notes.contains(&s) {
            eprintln!("bench: {s}");
            notes.push(s);
        }
    };

    // ---- case 3
    let mut per_call: BTreeMap<Tool, Vec<f64>> = BTreeMap::new();
    let mut untraced: Vec<f64> = Vec::new();
    for round in 0..rounds {
        eprintln!("bench: uprobe overhead round {}/{rounds}", round + 1);
        if let Ok(o) = Command::new(&env.uprobe_loop)
            .args([n.to_string(), cpu.clone()])
            .output()
        {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            if let Some(v) = parse_ns(&[text]) {
                untraced.push(v);
            }
        }
        for tool in Tool::BOTH {
            let args: Vec<String> = match tool {
                Tool::Tracer => vec![
                    "-q".into(),
                    "-c".into(),
                    target(&env.uprobe_loop),
                    "-n".into(),
                    "pid$target:a.out:bench_target:entry { @ = count(); }".into(),
                ],
                Tool::Bpftrace => vec![
                    "-c".into(),
                    target(&env.uprobe_loop),
                    "-e".into(),
                    format!(
                        "uprobe:{}:bench_target {{ @ = count(); }}",
                        env.uprobe_loop.display()
                    ),
                ],
            };
            let Some(mut s) = spawn(env, tool, &args) else {
                continue;
            };
            if s.wait_exit(Duration::from_secs(120)).is_none() {
                note(
                    format!("{} on the uprobe loop did not finish", tool.name()),
                    &mut notes,
                );
            }
            let e = s.stop();
            found
                .mem
                .record("uprobe `@ = count()`", tool, Some(e.rusage.maxrss_kib()));
            match parse_ns(s.stdout_lines()) {
                Some(v) => per_call.entry(tool).or_default().push(v),
                None => note(
                    format!("{} on the uprobe loop: {}", tool.name(), s.stderr_tail()),
                    &mut notes,
                ),
            }
        }
    }
    let base = median(&untraced);
    let med = |t: Tool| per_call.get(&t).and_then(|v| median(v));
    let over = |t: Tool| med(t).zip(base).map(|(v, b)| v - b);
    let mut sec = Section::new(
        "3. uprobe overhead (median ns per call of an empty function)",
        &["program", "tracer", "bpftrace", "tracer/bpftrace"],
    );
    sec.row(vec!["untraced".into(), ns(base), ns(base), "".into()]);
    sec.row(vec![
        "`pid$target:a.out:bench_target:entry { @ = count(); }` / `uprobe:…:bench_target`".into(),
        ns(med(Tool::Tracer)),
        ns(med(Tool::Bpftrace)),
        x(ratio(med(Tool::Tracer), med(Tool::Bpftrace))),
    ]);
    sec.row(vec![
        "overhead over untraced".into(),
        ns(over(Tool::Tracer)),
        ns(over(Tool::Bpftrace)),
        x(ratio(over(Tool::Tracer), over(Tool::Bpftrace))),
    ]);
    sec.note(format!(
        "bench/uprobe_loop.c calls a non-inlined function {n} times pinned to CPU {}, run by each \
         tool with -c; {rounds} runs per tool, alternating. Most of a uprobe's cost is the kernel's \
         breakpoint trap, which is the same for both tools (and large in a virtual machine).",
        env.loop_cpu
    ));
    for s in notes.drain(..) {
        sec.note(s);
    }

    // ---- case 8
    // Detaching costs the kernel ~0.1 s per uprobe here (for both tools), so this case is
    // long: one run per tool, and few functions in --quick mode.
    let funcs = if env.quick { 50 } else { 1000 };
    let srounds = 1;
    let mut scale = Section::new(
        &format!("8. Scale: uprobes on {funcs} functions"),
        &["", "tracer", "bpftrace", "tracer/bpftrace"],
    );
    let Some(bin) = many_functions(env, funcs) else {
        scale.row(vec!["skipped: cannot compile the target".into()]);
        return (sec, scale);
    };
    let mut live: BTreeMap<Tool, Vec<f64>> = BTreeMap::new();
    let mut total: BTreeMap<Tool, Vec<f64>> = BTreeMap::new();
    let mut counted: BTreeMap<Tool, String> = BTreeMap::new();
    for round in 0..srounds {
        eprintln!("bench: {funcs} uprobes, round {}/{srounds}", round + 1);
        for tool in Tool::BOTH {
            let args: Vec<String> = match tool {
                Tool::Tracer => vec![
                    "-q".into(),
                    "-c".into(),
                    bin.display().to_string(),
                    "-n".into(),
                    "pid$target:a.out:bench_f*:entry { @ = count(); }".into(),
                ],
                Tool::Bpftrace => vec![
                    "-c".into(),
                    bin.display().to_string(),
                    "-e".into(),
                    format!("uprobe:{}:bench_f* {{ @ = count(); }}", bin.display()),
                ],
            };
            let Some(mut s) = spawn(env, tool, &args) else {
                continue;
            };
            // The target is held until the probes are attached; its first line says it runs.
            match s.wait_lines(&["started"], Duration::from_secs(300)) {
                Some(at) => live
                    .entry(tool)
                    .or_default()
                    .push(at.duration_since(s.start).as_secs_f64()),
                None => note(
                    format!("{} with {funcs} uprobes: {}", tool.name(), s.stderr_tail()),
                    &mut notes,
                ),
            }
            if let Some((at, _)) = s.wait_exit(Duration::from_secs(300)) {
                total
                    .entry(tool)
                    .or_default()
                    .push(at.duration_since(s.start).as_secs_f64());
            }
            let e = s.stop();
            found.mem.record(
                &format!("{funcs} uprobes"),
                tool,
                Some(e.rusage.maxrss_kib()),
            );
            // The count the tool printed (the last number on its output).
            let n = s
                .stdout_lines()
                .iter()
                .rev()
                .find_map(|l| l.split_whitespace().last()?.parse::<u64>().ok());
            counted.insert(tool, n.map(|n| n.to_string()).unwrap_or("—".into()));
        }
    }
    let m = |v: &BTreeMap<Tool, Vec<f64>>, t: Tool| v.get(&t).and_then(|v| median(v));
    for (label, v) in [
        ("exec → target released (probes attached)", &live),
        ("exec → exit (attach, run, detach)", &total),
    ] {
        let (t, b) = (m(v, Tool::Tracer), m(v, Tool::Bpftrace));
        scale.row(vec![label.into(), ms(t), ms(b), x(ratio(t, b))]);
    }
    scale.row(vec![
        format!("calls counted (of {funcs})"),
        counted.get(&Tool::Tracer).cloned().unwrap_or("—".into()),
        counted.get(&Tool::Bpftrace).cloned().unwrap_or("—".into()),
        "".into(),
    ]);
    scale.note(format!(
        "A generated C program with {funcs} functions `bench_f0`…, run by each tool with -c; \
         `pid$target:a.out:bench_f*:entry` against `uprobe:PATH:bench_f*` (bpftrace with \
         BPFTRACE_MAX_PROBES and BPFTRACE_MAX_BPF_PROGS raised). {srounds} run(s) per tool. \
         1,000 fbt functions: skipped, tracer has no fbt provider yet."
    ));
    for s in notes {
        scale.note(s);
    }
    (sec, scale)
}
