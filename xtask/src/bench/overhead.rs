//! Case 2 (per-event overhead on the getppid loop) and, from the same runs, case 5 (peak RSS
//! while tracing, BPF map memory) and case 7 (instructions of the loaded programs).

use super::report::{median, ns, ratio, x, Section};
use super::scripts::{self, Script};
use super::session::{Out, Session, Tool};
use super::sys;
use super::{Env, Findings};
use std::collections::BTreeMap;
use std::time::Duration;

/// The programs one tool loaded for one script.
#[derive(Clone, Copy, Default, Debug)]
pub struct Progs {
    pub count: i64,
    pub xlated: i64,
    pub jited: i64,
    pub verified: i64,
    pub map_bytes: u64,
}

impl Progs {
    fn minus(self, o: Progs) -> Progs {
        Progs {
            count: self.count - o.count,
            xlated: self.xlated - o.xlated,
            jited: self.jited - o.jited,
            verified: self.verified - o.verified,
            map_bytes: self.map_bytes,
        }
    }
}

/// Read the programs and maps a running tool holds, waiting until their number has been
/// stable for 300 ms (bpftrace loads and closes feature probes at start-up).
pub fn programs(pid: i32) -> Progs {
    let mut last = sys::bpf_fds(pid);
    let mut stable_since = std::time::Instant::now();
    let deadline = stable_since + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = sys::bpf_fds(pid);
        if now.prog_ids != last.prog_ids || now.maps.len() != last.maps.len() {
            last = now;
            stable_since = std::time::Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    let mut p = Progs {
        map_bytes: last.map_bytes(),
        ..Progs::default()
    };
    for id in &last.prog_ids {
        if let Some(info) = sys::prog_info(*id) {
            p.count += 1;
            p.xlated += info.xlated_insns as i64;
            p.jited += info.jited_bytes as i64;
            p.verified += info.verified_insns as i64;
        }
    }
    p
}

/// Start `tool` on a script (trigger first) and wait until its probes are live.
pub fn start(env: &Env, tool: Tool, s: &Script, out: Out) -> Result<Session, String> {
    let file = env.script_file(tool, s.key, &scripts::source(tool, s));
    let mut session = Session::spawn(env.bin(tool), &env.script_args(tool, &file), out)
        .map_err(|e| e.to_string())?;
    match session.wait_live(Duration::from_secs(60)) {
        Some(_) => Ok(session),
        None => {
            session.stop();
            Err(format!(
                "{} did not go live on `{}`: {}",
                tool.name(),
                s.key,
                session.stderr_tail()
            ))
        }
    }
}

pub fn run(env: &Env, found: &mut Findings) -> Section {
    let (n, reps, rounds) = if env.quick {
        (300_000, 2, 3)
    } else {
        (1_000_000, 3, 7)
    };
    let mut untraced: Vec<f64> = Vec::new();
    // (script, tool) → (round, ns per call) of every loop
    let mut per_call: BTreeMap<(&str, Tool), Vec<(usize, f64)>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let note_failure = |msg: String, failures: &mut Vec<String>| {
        if !failures.contains(&msg) {
            eprintln!("bench: {msg}");
            failures.push(msg);
        }
    };

    // The trigger alone: its programs are subtracted from every script's counts.
    for tool in Tool::BOTH {
        match start(env, tool, &scripts::TRIGGER_ONLY, Out::Pipe) {
            Ok(mut s) => {
                found
                    .progs
                    .insert(("trigger".into(), tool), programs(s.pid));
                s.stop();
            }
            Err(e) => note_failure(e, &mut failures),
        }
    }

    for round in 0..rounds {
        eprintln!("bench: per-event overhead round {}/{rounds}", round + 1);
        for _ in 0..reps {
            if let Some(v) = env.syscall_loop(n) {
                untraced.push(v);
            }
        }
        for s in scripts::OVERHEAD {
            for tool in Tool::BOTH {
                let mut session = match start(env, tool, s, Out::Pipe) {
                    Ok(session) => session,
                    Err(e) => {
                        note_failure(e, &mut failures);
                        continue;
                    }
                };
                if round == 0 {
                    found
                        .progs
                        .insert((s.key.into(), tool), programs(session.pid));
                }
                for _ in 0..reps {
                    if let Some(v) = env.syscall_loop(n) {
                        per_call.entry((s.key, tool)).or_default().push((round, v));
                    }
                }
                let hwm = session.hwm_kib();
                let e = session.stop();
                let rss = hwm.max(Some(e.rusage.maxrss_kib()));
                found.mem.record(s.label, tool, rss);
                if !e.success() && e.status & 0x7f != sys::SIGINT {
                    note_failure(
                        format!("{} on `{}` ended with {}", tool.name(), s.key, e.describe()),
                        &mut failures,
                    );
                }
            }
        }
    }

    // --- case 2 table
    // Medians over every loop, and per round.
    let med = |k: &str, t: Tool| {
        let v: Vec<f64> = per_call.get(&(k, t))?.iter().map(|p| p.1).collect();
        median(&v)
    };
    let med_in = |k: &str, t: Tool, r: usize| {
        let v: Vec<f64> = per_call
            .get(&(k, t))?
            .iter()
            .filter(|p| p.0 == r)
            .map(|p| p.1)
            .collect();
        median(&v)
    };
    let floor_in = |k: &str, r: usize| -> Option<f64> {
        match (med_in(k, Tool::Tracer, r), med_in(k, Tool::Bpftrace, r)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    // Overhead over the floor: the difference within each round (the machine drifts between
    // rounds more than the programs differ), then the median over the rounds.
    let over = |k: &str, t: Tool, floor_key: &str| -> Option<f64> {
        let d: Vec<f64> = (0..rounds)
            .filter_map(|r| Some(med_in(k, t, r)? - floor_in(floor_key, r)?))
            .collect();
        median(&d)
    };
    let base = median(&untraced);
    let mut sec = Section::new(
        "2. Per-event overhead on a getppid loop (median ns per call)",
        &[
            "program",
            "tracer",
            "bpftrace",
            "tracer − floor",
            "bpftrace − floor",
            "overhead tracer/bpftrace",
        ],
    );
    sec.row(vec![
        "untraced".into(),
        ns(base),
        ns(base),
        "".into(),
        "".into(),
        "".into(),
    ]);
    for s in scripts::OVERHEAD {
        let f = if s.key == "latency" || s.key == "empty2" {
            "empty2"
        } else {
            "empty"
        };
        let t = med(s.key, Tool::Tracer);
        let b = med(s.key, Tool::Bpftrace);
        let (ot, ob) = (over(s.key, Tool::Tracer, f), over(s.key, Tool::Bpftrace, f));
        sec.row(vec![
            s.label.to_string(),
            ns(t),
            ns(b),
            ns(ot),
            ns(ob),
            x(ratio(ot, ob)),
        ]);
        if s.key != "empty" && s.key != "empty2" {
            found.overhead.push((s.label.to_string(), ot, ob));
        }
    }
    sec.note(format!(
        "bench/syscall_loop.c calls getppid() {n} times pinned to CPU {}; {reps} loops per tool \
         run, {rounds} runs per tool alternating tracer and bpftrace, untraced loops at the start \
         of each round.",
        env.loop_cpu
    ));
    sec.note(
        "The floor is the kernel's cost of running an almost empty program on the tracepoint: the \
         lower of the two tools' medians for the empty clause (for the latency pair, for empty \
         clauses on entry and return). Overheads are taken within each round, against that \
         round's floor, and the median over the rounds is shown (the machine drifts more between \
         rounds than the programs differ). bpftrace compiles `{ }` to `return 0`; tracer's empty clause \
         keeps D's default action (one trace record per event to the ring buffer), so its own \
         empty row is above the floor.",
    );
    sec.note(
        "`quantize(arg0)`: getppid has no arguments, so tracer's arg0 is 0 there; bpftrace gets \
         `hist(0)`.",
    );
    for f in failures {
        sec.note(f);
    }

    sec
}

/// Case 7's table, from the programs read during cases 2 and 4.
pub fn instructions(found: &mut Findings) -> Section {
    let progs = found.progs.clone();
    let mut ins = Section::new(
        "7. Instructions of the loaded programs (kernel's xlated count)",
        &[
            "script",
            "tracer progs/insns",
            "bpftrace progs/insns",
            "insns tracer/bpftrace",
            "tracer JIT bytes",
            "bpftrace JIT bytes",
            "tracer verifier steps",
            "bpftrace verifier steps",
        ],
    );
    let mut rows: Vec<(&str, String)> =
        vec![("trigger", "trigger clause only (subtracted below)".into())];
    for s in scripts::OVERHEAD {
        rows.push((s.key, s.label.to_string()));
    }
    rows.push(("printf", scripts::PRINTF.label.to_string()));
    rows.push((
        "syscall20",
        "20-clause syscall script (bench/syscall20.*)".into(),
    ));
    for (key, label) in rows {
        let get = |t: Tool| -> Option<Progs> {
            let p = *progs.get(&(key.to_string(), t))?;
            if key == "trigger" || key == "syscall20" {
                Some(p)
            } else {
                Some(
                    p.minus(
                        progs
                            .get(&("trigger".to_string(), t))
                            .copied()
                            .unwrap_or_default(),
                    ),
                )
            }
        };
        let (t, b) = (get(Tool::Tracer), get(Tool::Bpftrace));
        if t.is_none() && b.is_none() {
            continue;
        }
        let pi = |p: Option<Progs>| {
            p.map(|p| format!("{} / {}", p.count, p.xlated))
                .unwrap_or("—".into())
        };
        let jb = |p: Option<Progs>| p.map(|p| p.jited.to_string()).unwrap_or("—".into());
        let vs = |p: Option<Progs>| p.map(|p| p.verified.to_string()).unwrap_or("—".into());
        let r = ratio(t.map(|p| p.xlated as f64), b.map(|p| p.xlated as f64));
        ins.row(vec![
            label.clone(),
            pi(t),
            pi(b),
            x(r),
            jb(t),
            jb(b),
            vs(t),
            vs(b),
        ]);
        if key != "trigger" {
            found
                .insns
                .push((label, t.map(|p| p.xlated), b.map(|p| p.xlated)));
        }
    }
    ins.note(
        "Read while each tool runs: the prog ids from /proc/PID/fdinfo of its bpf-prog fds, then \
         bpf(BPF_OBJ_GET_INFO_BY_FD): xlated_prog_len / 8 (instructions after the verifier's \
         rewrites), jited_prog_len, verified_insns. Every script starts with the trigger clause; \
         the trigger-only run's programs are subtracted (the 20-clause script keeps its own).",
    );
    ins
}
