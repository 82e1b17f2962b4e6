//! `cargo xtask bench [--quick]`: tracer against bpftrace on this machine, side by side.
//!
//! Builds tracer in release mode, installs bpftrace from apt when it is missing, compiles the
//! C programs under bench/, then runs each case for both tools in alternation (A B A B …)
//! and prints a table of medians and tracer/bpftrace ratios. A full run writes BENCHMARKS.md
//! (text after its "kept" marker survives the rewrite). Benchmarks are not tests: nothing
//! here fails on a timing; a case that cannot run is reported and skipped.
//!
//! Cases: 1 start-up, 2 per-event overhead, 3 uprobe overhead, 4 printf throughput,
//! 5 peak RSS, 6 footprint, 7 instruction counts, 8 scale (many uprobes; fbt skipped),
//! 9 JIT frames (a node profile's ustack: END to exit and peak RSS).

mod footprint;
mod jit;
mod output;
mod overhead;
mod report;
mod scripts;
mod session;
mod startup;
mod sys;
mod uprobe;

use anyhow::{bail, Context, Result};
use report::{kib, x, Section};
use session::Tool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask bench [--quick] [--output FILE | --no-write]

  --quick        fewer and shorter runs (under 2 minutes once tracer is built);
                 prints the tables but does not rewrite BENCHMARKS.md unless --output is given
  --output FILE  write the report to FILE (a full run writes BENCHMARKS.md)
  --no-write     only print the report
  --only LIST    run only these cases (comma-separated: startup, overhead, uprobe,
                 printf, footprint, jit); implies --no-write unless --output is given

Runs as root. Installs bpftrace with apt-get when it is missing.";

/// Marker in BENCHMARKS.md: everything after it is hand-written and kept.
const KEEP_MARKER: &str =
    "<!-- Everything below this line is kept when `cargo xtask bench` rewrites the file. -->";

pub struct Env {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// target/bench: compiled C programs, generated scripts, output files.
    pub scratch: PathBuf,
    pub tracer: PathBuf,
    pub bpftrace: PathBuf,
    pub syscall_loop: PathBuf,
    pub uprobe_loop: PathBuf,
    pub loop_cpu: usize,
    pub quick: bool,
}

impl Env {
    pub fn bin(&self, tool: Tool) -> &Path {
        match tool {
            Tool::Tracer => &self.tracer,
            Tool::Bpftrace => &self.bpftrace,
        }
    }

    /// Write a generated script; its path.
    pub fn script_file(&self, tool: Tool, key: &str, text: &str) -> PathBuf {
        let ext = match tool {
            Tool::Tracer => "d",
            Tool::Bpftrace => "bt",
        };
        let path = self.scratch.join(format!("{key}.{ext}"));
        let _ = std::fs::write(&path, text);
        path
    }

    /// Arguments that run a script file with this process's pid as `$1`.
    pub fn script_args(&self, tool: Tool, file: &Path) -> Vec<String> {
        let pid = sys::my_pid().to_string();
        match tool {
            Tool::Tracer => vec!["-s".into(), file.display().to_string(), pid],
            Tool::Bpftrace => vec![file.display().to_string(), pid],
        }
    }

    /// One run of syscall_loop: ns per getppid call.
    pub fn syscall_loop(&self, n: u64) -> Option<f64> {
        self.syscall_loop_paced(n, None).map(|r| r.1)
    }

    /// One run of syscall_loop, at `rate` calls per second if given: its pid and ns per call.
    pub fn syscall_loop_paced(&self, n: u64, rate: Option<u64>) -> Option<(i32, f64)> {
        let mut args = vec![n.to_string(), self.loop_cpu.to_string()];
        if let Some(r) = rate {
            args.push(r.to_string());
        }
        let child = Command::new(&self.syscall_loop)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let pid = child.id() as i32;
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let v = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ns_per_call="))?
            .parse()
            .ok()?;
        Some((pid, v))
    }
}

/// Peak RSS per case and tool, in KiB (the largest seen over the runs).
#[derive(Default)]
pub struct Memory {
    rows: Vec<(String, [Option<u64>; 2])>,
}

impl Memory {
    pub fn record(&mut self, case: &str, tool: Tool, kib: Option<u64>) {
        let Some(kib) = kib else { return };
        let i = match tool {
            Tool::Tracer => 0,
            Tool::Bpftrace => 1,
        };
        let row = match self.rows.iter().position(|r| r.0 == case) {
            Some(p) => &mut self.rows[p],
            None => {
                self.rows.push((case.to_string(), [None, None]));
                self.rows.last_mut().unwrap()
            }
        };
        row.1[i] = Some(row.1[i].map_or(kib, |v: u64| v.max(kib)));
    }
}

/// Numbers the goals table is computed from.
#[derive(Default)]
pub struct Findings {
    pub mem: Memory,
    /// (case, tracer seconds, bpftrace seconds)
    pub startup: Vec<(String, Option<f64>, Option<f64>)>,
    /// (program, tracer ns over the floor, bpftrace ns over the floor)
    pub overhead: Vec<(String, Option<f64>, Option<f64>)>,
    /// (script, tracer insns, bpftrace insns)
    pub insns: Vec<(String, Option<i64>, Option<i64>)>,
    /// (tracer events/s, bpftrace events/s, tracer lost events silently)
    pub printf: Option<(Option<f64>, Option<f64>, bool)>,
    pub progs: BTreeMap<(String, Tool), overhead::Progs>,
    pub static_size: Option<u64>,
    pub static_note: String,
}

struct Options {
    quick: bool,
    /// Cases to run (all when empty): startup, overhead, uprobe, printf, footprint, jit.
    only: Vec<String>,
    output: Option<PathBuf>,
    write: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        only: Vec::new(),
        output: None,
        write: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-write" => o.write = false,
            "--only" => {
                let list = it.next().context("--only needs a list of cases")?;
                for c in list.split(',') {
                    if ![
                        "startup",
                        "overhead",
                        "uprobe",
                        "printf",
                        "footprint",
                        "jit",
                    ]
                    .contains(&c)
                    {
                        bail!(
                            "unknown case {c:?}: startup, overhead, uprobe, printf, footprint or jit"
                        );
                    }
                    o.only.push(c.to_string());
                }
            }
            "--output" | "-o" => {
                o.output = Some(PathBuf::from(it.next().context("--output needs a file")?));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(o)
}

fn cmd_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s.is_empty() {
                String::from_utf8_lossy(&o.stderr).trim().to_string()
            } else {
                s
            }
        })
        .unwrap_or_default()
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn ensure_bpftrace() -> Result<PathBuf> {
    if let Some(p) = which("bpftrace") {
        return Ok(p);
    }
    eprintln!("bench: bpftrace is missing; installing it with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "bpftrace"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        install();
    }
    which("bpftrace").context("bpftrace is not installed and apt-get could not install it")
}

fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events").exists()
        || Path::new("/sys/kernel/debug/tracing/events").exists()
    {
        return;
    }
    let _ = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status();
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What else was running: the load average and the BPF programs loaded by others.
pub struct Background {
    load_start: String,
    progs_start: usize,
}

fn machine(env: &Env, build_secs: f64, bg: &Background) -> Section {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|r| r.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .flatten();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let distro = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&env.root)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let mut s = Section::new("Machine", &["", ""]);
    s.row(vec![
        "date (UTC)".into(),
        cmd_output("date", &["-u", "+%Y-%m-%d %H:%M"]),
    ]);
    s.row(vec![
        "commit".into(),
        format!(
            "{commit}{}",
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        ),
    ]);
    s.row(vec!["kernel".into(), kernel.trim().to_string()]);
    s.row(vec!["distribution".into(), distro]);
    s.row(vec!["CPU".into(), format!("{model}, {cpus} CPUs")]);
    s.row(vec!["memory".into(), kib(mem)]);
    s.row(vec![
        "bpftrace".into(),
        cmd_output(&env.bpftrace.display().to_string(), &["--version"]),
    ]);
    s.row(vec!["rustc".into(), cmd_output("rustc", &["--version"])]);
    s.row(vec![
        "load average (1, 5, 15 min)".into(),
        format!("{} at the start, {} at the end", bg.load_start, loadavg()),
    ]);
    s.row(vec![
        "other BPF programs loaded".into(),
        format!(
            "{} at the start, {} at the end",
            bg.progs_start,
            sys::all_prog_ids().len()
        ),
    ]);
    s.row(vec![
        "mode".into(),
        format!(
            "{} (tracer release build step: {build_secs:.1} s, not counted)",
            if env.quick { "--quick" } else { "full" }
        ),
    ]);
    s
}

fn memory_section(found: &Findings) -> Section {
    let mut s = Section::new(
        "5. Peak RSS while tracing (largest over the runs)",
        &[
            "case",
            "tracer",
            "bpftrace",
            "tracer/bpftrace",
            "tracer BPF maps",
            "bpftrace BPF maps",
        ],
    );
    let key_of = |label: &str| -> Option<&str> {
        if label == scripts::PRINTF.label {
            return Some("printf");
        }
        if label.starts_with("20-clause") {
            return Some("syscall20");
        }
        scripts::OVERHEAD
            .iter()
            .find(|s| s.label == label)
            .map(|s| s.key)
    };
    for (label, v) in &found.mem.rows {
        let maps = |t: Tool| {
            key_of(label)
                .and_then(|k| found.progs.get(&(k.to_string(), t)))
                .map(|p| report::bytes(Some(p.map_bytes)))
                .unwrap_or_default()
        };
        s.row(vec![
            label.clone(),
            kib(v[0]),
            kib(v[1]),
            x(report::ratio(
                v[0].map(|v| v as f64),
                v[1].map(|v| v as f64),
            )),
            maps(Tool::Tracer),
            maps(Tool::Bpftrace),
        ]);
    }
    s.note(
        "Peak RSS is the larger of VmHWM read just before the tool is stopped and ru_maxrss from \
         wait4() when it has ended (so it includes compiling and the end-of-run output). BPF maps: \
         the memlock the kernel reports in fdinfo for every map the tool holds (bpftrace 0.17's \
         per-CPU perf buffers are not maps and are not counted).",
    );
    s
}

fn goals(found: &Findings) -> Section {
    let mut s = Section::new("Goals (issue 6)", &["goal", "measured", "met"]);
    let yes = |ok: bool| if ok { "yes" } else { "**no**" }.to_string();
    for (label, t, b) in &found.startup {
        if t.is_none() && b.is_none() {
            continue;
        }
        let r = report::ratio(*t, *b);
        s.row(vec![
            format!("start-up ≤ 1/20 of bpftrace's: {label}"),
            format!("{} of bpftrace's", x(r)),
            r.map(|r| yes(r <= 0.05)).unwrap_or("—".into()),
        ]);
    }
    let rss = found.mem.rows.iter().filter_map(|r| r.1[0]).max();
    s.row(vec![
        "tracer's peak RSS ≤ 12 MiB".into(),
        kib(rss),
        rss.map(|k| yes(k <= 12 * 1024)).unwrap_or("—".into()),
    ]);
    s.row(vec![
        "static stripped binary ≤ 10 MiB".into(),
        match found.static_size {
            Some(b) => report::bytes(Some(b)),
            None => format!("not measured: {}", found.static_note),
        },
        found
            .static_size
            .map(|b| yes(b <= 10 << 20))
            .unwrap_or("—".into()),
    ]);
    for (label, t, b) in &found.overhead {
        if t.is_none() && b.is_none() {
            continue;
        }
        let ok = match (t, b) {
            // Within 10 ns of the floor counts as at the floor: a ratio of two numbers that
            // small is noise.
            (Some(t), Some(b)) => Some(*t <= 60.0 && (*t <= 0.7 * b.max(0.0) || *t <= 10.0)),
            _ => None,
        };
        s.row(vec![
            format!("overhead ≤ 0.7× bpftrace's and ≤ 60 ns over the floor: {label}"),
            format!(
                "{} over the floor ({} of bpftrace's {})",
                report::ns(*t),
                x(report::ratio(*t, *b)),
                report::ns(*b)
            ),
            ok.map(yes).unwrap_or("—".into()),
        ]);
    }
    for (label, t, b) in &found.insns {
        if t.is_none() && b.is_none() {
            continue;
        }
        let ok = match (t, b) {
            (Some(t), Some(b)) => Some(t <= b),
            _ => None,
        };
        s.row(vec![
            format!("instructions ≤ bpftrace's: {label}"),
            format!(
                "{} vs {}",
                t.map(|v| v.to_string()).unwrap_or("—".into()),
                b.map(|v| v.to_string()).unwrap_or("—".into())
            ),
            ok.map(yes).unwrap_or("—".into()),
        ]);
    }
    if let Some((t, b, silent)) = found.printf {
        let r = report::ratio(t, b);
        s.row(vec![
            "printf throughput ≥ 2× bpftrace's, no silent loss".into(),
            format!(
                "{} of bpftrace's{}",
                x(r),
                if silent { ", events lost silently" } else { "" }
            ),
            r.map(|r| yes(r >= 2.0 && !silent)).unwrap_or("—".into()),
        ]);
    }
    s
}

pub fn main(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    if !sys::is_root() {
        bail!("the benchmark loads eBPF programs: run it as root (sudo cargo xtask bench)");
    }
    let began = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let scratch = target_dir.join("bench");
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    ensure_tracefs();
    let bpftrace = ensure_bpftrace()?;

    eprintln!("bench: cargo build --release -p tracer-cli");
    let t = Instant::now();
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "tracer-cli"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release -p tracer-cli failed");
    }
    let build_secs = t.elapsed().as_secs_f64();
    let tracer = target_dir.join("release/tracer");

    let syscall_loop = scratch.join("syscall_loop");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-o"])
        .arg(&syscall_loop)
        .arg(root.join("bench/syscall_loop.c"))
        .status()
        .with_context(|| format!("cannot run {cc} (a C compiler is needed for bench/*.c)"))?;
    if !status.success() {
        bail!("cannot compile bench/syscall_loop.c");
    }
    let uprobe_loop = scratch.join("uprobe_loop");
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-o"])
        .arg(&uprobe_loop)
        .arg(root.join("bench/uprobe_loop.c"))
        .status()
        .with_context(|| format!("cannot run {cc}"))?;
    if !status.success() {
        bail!("cannot compile bench/uprobe_loop.c");
    }
    // bpftrace 0.17 refuses more than 512 probes or programs by default (case 8 needs 1000).
    // Set before any thread starts; only bpftrace reads them.
    std::env::set_var("BPFTRACE_MAX_PROBES", "5000");
    std::env::set_var("BPFTRACE_MAX_BPF_PROGS", "5000");
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let env = Env {
        root: root.clone(),
        target_dir,
        scratch,
        tracer,
        bpftrace,
        syscall_loop,
        uprobe_loop,
        loop_cpu: cpus - 1,
        quick: opts.quick,
    };

    let bg = Background {
        load_start: loadavg(),
        progs_start: sys::all_prog_ids().len(),
    };
    let measuring = Instant::now();
    let mut found = Findings::default();
    let want = |case: &str| opts.only.is_empty() || opts.only.iter().any(|c| c == case);
    let mut sections: Vec<Section> = Vec::new();
    if want("startup") {
        let s = startup::run(&env, &mut found);
        eprint!("{}", s.markdown());
        sections.push(s);
    }
    if want("overhead") {
        let s = overhead::run(&env, &mut found);
        eprint!("{}", s.markdown());
        sections.push(s);
    }
    let mut scale = None;
    if want("uprobe") {
        let (s3, s8) = uprobe::run(&env, &mut found);
        eprint!("{}", s3.markdown());
        sections.push(s3);
        scale = Some(s8);
    }
    if want("printf") {
        let s = output::run(&env, &mut found);
        eprint!("{}", s.markdown());
        sections.push(s);
    }
    if want("jit") {
        let s = jit::run(&env);
        eprint!("{}", s.markdown());
        sections.push(s);
    }
    let measured_secs = measuring.elapsed().as_secs_f64();
    if !found.mem.rows.is_empty() {
        sections.push(memory_section(&found));
    }
    if want("footprint") {
        sections.push(footprint::run(&env, &mut found));
    }
    if !found.progs.is_empty() {
        sections.push(overhead::instructions(&mut found));
    }
    sections.extend(scale);
    sections.push(goals(&found));

    let mut body = String::new();
    body.push_str(&machine(&env, build_secs, &bg).markdown());
    for s in &sections {
        body.push_str(&s.markdown());
    }
    body.push_str(&format!(
        "Measuring took {measured_secs:.0} s; the whole run {:.0} s.\n",
        began.elapsed().as_secs_f64()
    ));
    println!("\n{body}");

    let out = match (&opts.output, opts.quick) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(root.join("BENCHMARKS.md")),
        (None, true) => None,
    };
    let write = opts.write && (opts.only.is_empty() || opts.output.is_some());
    if let (Some(path), true) = (out, write) {
        let kept = std::fs::read_to_string(&path)
            .ok()
            .and_then(|old| old.split_once(KEEP_MARKER).map(|(_, k)| k.to_string()))
            .unwrap_or_else(|| "\n".to_string());
        let text = format!(
            "# Benchmarks: tracer against bpftrace\n\n\
             Written by `cargo xtask bench` (xtask/src/bench.rs); `cargo xtask bench --quick` prints a \
             shorter run without rewriting this file. Both tools run on the same machine in the same \
             run, alternating. Ratios are tracer/bpftrace: below 1 means tracer is smaller or faster. \
             Benchmarks are not tests: nothing fails on a timing.\n\n{body}\n{KEEP_MARKER}{kept}"
        );
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}
