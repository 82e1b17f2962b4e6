//! Case 4: printf throughput to a file, where drops start, and whether they are reported.

use super::overhead::{programs, start};
use super::report::{median, ns, ratio, x, Section};
use super::scripts;
use super::session::{Out, Tool};
use super::{Env, Findings};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Wait until `path` has not grown for `quiet`; when it last grew.
fn drained(path: &Path, quiet: Duration) -> Instant {
    let mut size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut last_growth = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        let now = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if now != size {
            size = now;
            last_growth = Instant::now();
        } else if last_growth.elapsed() >= quiet {
            break;
        }
    }
    last_growth
}

/// Records per loop pid: lines `ev syscall_loop PID TID`.
fn count_by_pid(text: &str) -> BTreeMap<i32, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if w.next() != Some("ev") || w.next() != Some("syscall_loop") {
            continue;
        }
        if let Some(pid) = w.next().and_then(|p| p.parse().ok()) {
            *m.entry(pid).or_insert(0) += 1;
        }
    }
    m
}

/// Lines where a tool reports lost records.
fn loss_reports(stderr: &str, stdout: &str) -> Vec<String> {
    stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| {
            let l = l.to_lowercase();
            !l.starts_with("ev ") && (l.contains("drop") || l.contains("lost"))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

const WARMUP: u64 = 1000; // syscall_loop's warm-up calls are traced too

pub fn run(env: &Env, found: &mut Findings) -> Section {
    let (flood_n, rounds, step_secs): (u64, usize, f64) = if env.quick {
        (200_000, 2, 0.2)
    } else {
        (1_000_000, 3, 0.5)
    };
    let rates: &[u64] = if env.quick {
        &[25_000, 100_000, 200_000, 400_000]
    } else {
        &[25_000, 50_000, 100_000, 200_000, 400_000, 800_000]
    };
    let mut flood_rate: BTreeMap<Tool, Vec<f64>> = BTreeMap::new();
    let mut flood_ns: BTreeMap<Tool, Vec<f64>> = BTreeMap::new();
    let mut flood_lost: BTreeMap<Tool, Vec<u64>> = BTreeMap::new();
    // (records lost, achieved calls per second) per run
    let mut paced_lost: BTreeMap<(u64, Tool), Vec<(u64, f64)>> = BTreeMap::new();
    // Per tool: every run's loss reports, and whether some run lost records without one.
    let mut said: BTreeMap<Tool, Vec<String>> = BTreeMap::new();
    let mut silent: BTreeMap<Tool, bool> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();

    for round in 0..rounds {
        eprintln!("bench: printf throughput round {}/{rounds}", round + 1);
        for tool in Tool::BOTH {
            let out = env.scratch.join(format!("printf-{}.out", tool.name()));
            let mut s = match start(env, tool, &scripts::PRINTF, Out::File(out.clone())) {
                Ok(s) => s,
                Err(e) => {
                    if !notes.contains(&e) {
                        eprintln!("bench: {e}");
                        notes.push(e);
                    }
                    continue;
                }
            };
            if round == 0 {
                found.progs.insert(("printf".into(), tool), programs(s.pid));
            }
            // Paced: rising event rates, each drained before the next.
            let mut paced: Vec<(u64, i32, u64, f64)> = Vec::new();
            for &rate in rates {
                let n = (rate as f64 * step_secs) as u64;
                if let Some((pid, per_call)) = env.syscall_loop_paced(n, Some(rate)) {
                    paced.push((rate, pid, n + WARMUP, 1e9 / per_call));
                }
                drained(&out, Duration::from_millis(300));
            }
            // Flood: as fast as the loop can go.
            let t0 = Instant::now();
            let flood = env.syscall_loop_paced(flood_n, None);
            let produced = t0.elapsed();
            let last = drained(&out, Duration::from_millis(500));
            let hwm = s.hwm_kib();
            let e = s.stop();
            found.mem.record(
                scripts::PRINTF.label,
                tool,
                hwm.max(Some(e.rusage.maxrss_kib())),
            );

            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let counts = count_by_pid(&text);
            let mut lost_any = false;
            for (rate, pid, expected, achieved) in paced {
                let lost = expected.saturating_sub(counts.get(&pid).copied().unwrap_or(0));
                lost_any |= lost > 0;
                paced_lost
                    .entry((rate, tool))
                    .or_default()
                    .push((lost, achieved));
            }
            if let Some((pid, per_call)) = flood {
                let got = counts.get(&pid).copied().unwrap_or(0);
                let secs = last.duration_since(t0).max(produced).as_secs_f64();
                flood_rate.entry(tool).or_default().push(got as f64 / secs);
                flood_ns.entry(tool).or_default().push(per_call);
                let lost = (flood_n + WARMUP).saturating_sub(got);
                lost_any |= lost > 0;
                flood_lost.entry(tool).or_default().push(lost);
            }
            let reports = loss_reports(&s.stderr(), &text);
            if lost_any && reports.is_empty() {
                silent.insert(tool, true);
            }
            said.entry(tool).or_default().extend(reports);
        }
    }

    let mut sec = Section::new(
        "4. printf throughput to a file",
        &["", "tracer", "bpftrace", "tracer/bpftrace"],
    );
    let med = |m: &BTreeMap<Tool, Vec<f64>>, t: Tool| m.get(&t).and_then(|v| median(v));
    let fmt_rate = |v: Option<f64>| {
        v.map(|v| format!("{:.0}k/s", v / 1e3))
            .unwrap_or("—".into())
    };
    let (rt, rb) = (
        med(&flood_rate, Tool::Tracer),
        med(&flood_rate, Tool::Bpftrace),
    );
    sec.row(vec![
        format!("flood ({flood_n} calls): records written per second"),
        fmt_rate(rt),
        fmt_rate(rb),
        x(ratio(rt, rb)),
    ]);
    let (nt, nb) = (med(&flood_ns, Tool::Tracer), med(&flood_ns, Tool::Bpftrace));
    sec.row(vec![
        "flood: traced getppid, ns per call".into(),
        ns(nt),
        ns(nb),
        x(ratio(nt, nb)),
    ]);
    let reported = |t: Tool| said.get(&t).map(|v| !v.is_empty()).unwrap_or(false);
    let lost_cell = |v: Option<&Vec<u64>>, t: Tool| -> String {
        let Some(v) = v else { return "—".into() };
        let worst = v.iter().copied().max().unwrap_or(0);
        let total = (flood_n + WARMUP) as f64;
        match worst {
            0 => "0".into(),
            n if silent.get(&t).copied().unwrap_or(false) && !reported(t) => {
                format!("{n} ({:.0}%, SILENT)", n as f64 * 100.0 / total)
            }
            n => format!("{n} ({:.0}%)", n as f64 * 100.0 / total),
        }
    };
    sec.row(vec![
        "flood: records lost (worst run)".into(),
        lost_cell(flood_lost.get(&Tool::Tracer), Tool::Tracer),
        lost_cell(flood_lost.get(&Tool::Bpftrace), Tool::Bpftrace),
        "".into(),
    ]);
    // The highest rate the loop achieved in a step where no run lost a record.
    let achieved = |v: &Vec<(u64, f64)>| median(&v.iter().map(|p| p.1).collect::<Vec<_>>());
    let best = |t: Tool| -> Option<f64> {
        let mut best: Option<f64> = None;
        for &rate in rates {
            let v = paced_lost.get(&(rate, t))?;
            if v.iter().all(|p| p.0 == 0) {
                if let Some(a) = achieved(v) {
                    best = Some(best.map_or(a, |b: f64| b.max(a)));
                }
            }
        }
        best
    };
    let (bt, bb) = (best(Tool::Tracer), best(Tool::Bpftrace));
    let fmt_best = |b: Option<f64>, t: Tool| match b {
        Some(r) => fmt_rate(Some(r)),
        None if paced_lost.keys().any(|k| k.1 == t) => format!("< {}k/s", rates[0] / 1000),
        None => "—".into(),
    };
    sec.row(vec![
        "paced: highest rate achieved with no record lost".into(),
        fmt_best(bt, Tool::Tracer),
        fmt_best(bb, Tool::Bpftrace),
        x(ratio(bt, bb)),
    ]);
    for &rate in rates {
        let cell = |t: Tool| {
            paced_lost
                .get(&(rate, t))
                .map(|v| {
                    let worst = v.iter().map(|p| p.0).max().unwrap_or(0);
                    let at = fmt_rate(achieved(v));
                    if worst == 0 {
                        format!("0 at {at}")
                    } else {
                        let n = (rate as f64 * step_secs) as u64 + WARMUP;
                        format!("{worst} ({:.0}%) at {at}", worst as f64 * 100.0 / n as f64)
                    }
                })
                .unwrap_or("—".into())
        };
        sec.row(vec![
            format!(
                "paced {}k/s, {step_secs} s: records lost (worst run), rate achieved",
                rate / 1000
            ),
            cell(Tool::Tracer),
            cell(Tool::Bpftrace),
            "".into(),
        ]);
    }
    for t in Tool::BOTH {
        match said.get(&t) {
            Some(v) if !v.is_empty() => {
                let mut uniq: Vec<&String> = Vec::new();
                for s in v {
                    if uniq.len() < 3 && !uniq.contains(&s) {
                        uniq.push(s);
                    }
                }
                let more = if v.len() > uniq.len() { " …" } else { "" };
                sec.note(format!(
                    "{} reported: {}{more}",
                    t.name(),
                    uniq.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            _ => {}
        }
        if silent.get(&t).copied().unwrap_or(false) {
            sec.note(format!(
                "{} lost records in a run without reporting it.",
                t.name()
            ));
        }
    }
    sec.note(format!(
        "One record per getppid call of bench/syscall_loop.c on CPU {} (plus its 1000 warm-up \
         calls); the tool's stdout goes to a file, and the records of each loop are counted by its \
         pid. Paced: the loop spaces its calls to a given rate (busy-waiting), rising from {}k/s, \
         the file drained before the next rate; when the traced call itself takes longer than the \
         spacing, the loop falls behind, so the rate achieved is shown. Flood: the loop as fast as it goes; rate = its \
         records in the file / time from its start until the file stopped growing. {rounds} runs \
         per tool, alternating; medians.",
        env.loop_cpu,
        rates[0] / 1000
    ));
    for n in notes {
        sec.note(n);
    }
    found.printf = Some((rt, rb, silent.get(&Tool::Tracer).copied().unwrap_or(false)));
    sec
}
