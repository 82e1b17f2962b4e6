//! Case 9: user stacks of a JIT runtime. A CPU profile of `node --perf-basic-prof` running a
//! hot JavaScript function; node exits before END, so each tool symbolizes after the process
//! is gone. Measured: the time from END to exit (the end-of-run symbolization and printing),
//! peak RSS, and how many printed frames are named JavaScript functions or left in hex.

use super::report::{kib, median, ms, Section};
use super::session::{Out, Session, Tool};
use super::Env;
use std::collections::BTreeMap;
use std::os::raw::{c_int, c_long};
use std::path::PathBuf;
use std::time::Duration;

const BUSY_JS: &str = "\
function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * Math.sin(i); return s; }
function warm() { let t = 0; for (let k = 0; k < 200; k++) t += hot(10000); return t; }
const end = Date.now() + 2000; let x = 0;
while (Date.now() < end) x += warm();
console.log(x > 0 ? 'done' : 'done.');
";

#[repr(C)]
struct Timespec {
    sec: c_long,
    nsec: c_long,
}

extern "C" {
    fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), so of tracer's `timestamp` and
/// bpftrace's `nsecs`.
fn monotonic_ns() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec; CLOCK_MONOTONIC (1) always exists.
    unsafe { clock_gettime(1, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Per tool: END→exit seconds, peak RSS, and (named JS frames, hex frames) of the last run.
#[derive(Default)]
struct Runs {
    after_end: Vec<f64>,
    rss: Option<u64>,
    frames: Option<(usize, usize)>,
    failure: Option<String>,
}

fn is_hex_frame(l: &str) -> bool {
    let t = l.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    t.len() >= 6 && t.chars().all(|c| c.is_ascii_hexdigit())
}

pub fn run(env: &Env) -> Section {
    let mut s = Section::new(
        "9. JIT frames: ustack() of a node --perf-basic-prof CPU profile",
        &[
            "tool",
            "END to exit (median)",
            "peak RSS",
            "JS frames named",
            "frames in hex",
        ],
    );
    let Some(node) = which("node") else {
        s.note("skipped: node is not installed (apt-get install nodejs)");
        eprintln!("bench: case 9 skipped: node is not installed");
        return s;
    };
    let js = env.scratch.join("busy.js");
    if let Err(e) = std::fs::write(&js, BUSY_JS) {
        s.note(format!("skipped: cannot write {}: {e}", js.display()));
        return s;
    }
    // bpftrace wants a unique path for -c.
    // --perf-basic-prof also writes a V8 log into the working directory: keep it in scratch.
    let cmd = format!(
        "{} --perf-basic-prof --no-logfile-per-isolate --logfile={} {}",
        node.display(),
        env.scratch.join("v8.log").display(),
        js.display()
    );
    let rounds = if env.quick { 1 } else { 3 };
    let mut runs: BTreeMap<Tool, Runs> = BTreeMap::new();
    for round in 0..rounds {
        eprintln!("bench: JIT frames round {}/{rounds}", round + 1);
        for tool in Tool::BOTH {
            let r = runs.entry(tool).or_default();
            if r.failure.is_some() {
                continue;
            }
            let args: Vec<String> = match tool {
                Tool::Tracer => vec![
                    "-q".into(),
                    "-n".into(),
                    "profile-997 /pid == $target/ { @[ustack()] = count(); } \
                     END { printf(\"END %d\\n\", timestamp); }"
                        .into(),
                    "-c".into(),
                    cmd.clone(),
                ],
                Tool::Bpftrace => vec![
                    "-e".into(),
                    "profile:hz:997 /pid == cpid/ { @[ustack()] = count(); } \
                     END { printf(\"END %lld\\n\", nsecs); }"
                        .into(),
                    "-c".into(),
                    cmd.clone(),
                ],
            };
            let out = env.scratch.join(format!("jit-{}.out", tool.name()));
            let mut sess = match Session::spawn(env.bin(tool), &args, Out::File(out.clone())) {
                Ok(sess) => sess,
                Err(e) => {
                    r.failure = Some(format!("cannot run: {e:#}"));
                    continue;
                }
            };
            // The old per-address symbolization took minutes here: wait long enough to
            // measure it rather than give up.
            let Some((_, exit)) = sess.wait_exit(Duration::from_secs(900)) else {
                sess.stop();
                r.failure = Some("did not finish within 15 minutes".into());
                continue;
            };
            let exited = monotonic_ns();
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let end = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("END ")?.trim().parse::<u64>().ok());
            match (exit.success(), end) {
                (true, Some(end)) => {
                    r.after_end.push(exited.saturating_sub(end) as f64 / 1e9);
                    r.rss = Some(r.rss.unwrap_or(0).max(exit.rusage.maxrss_kib()));
                    let js = text.lines().filter(|l| l.contains("JS:")).count();
                    let hex = text.lines().filter(|l| is_hex_frame(l)).count();
                    r.frames = Some((js, hex));
                }
                _ => {
                    r.failure = Some(format!("{}: {}", exit.describe(), sess.stderr_tail()));
                }
            }
        }
    }
    for tool in Tool::BOTH {
        let r = runs.remove(&tool).unwrap_or_default();
        if let Some(f) = &r.failure {
            eprintln!("bench: {} JIT frames failed: {f}", tool.name());
            s.note(format!("{} failed: {f}", tool.name()));
        }
        let (js, hex) = r.frames.map_or(("—".into(), "—".into()), |(j, h)| {
            (j.to_string(), h.to_string())
        });
        s.row(vec![
            tool.name().into(),
            ms(median(&r.after_end)),
            kib(r.rss),
            js,
            hex,
        ]);
    }
    s.note(
        "node runs a hot JavaScript function for 2 s under a 997 Hz profile of its user stacks and \
         exits before END, so the stacks are symbolized after the process is gone (node's perf map \
         stays in /tmp; its 99 MB binary with debug info is read for native frames). END to exit: \
         CLOCK_MONOTONIC at the tool's exit minus `timestamp`/`nsecs` printed by END. Peak RSS: \
         ru_maxrss, the largest over the runs. Frames counted in the last run's output.",
    );
    s
}
