//! The runtime: load and attach a [`CompiledScript`], fire BEGIN, release the `-c` target,
//! feed decoded records to a [`RecordHandler`] until something stops the run, fire END, drain,
//! report drops, and hand the session back for the final aggregation dump.
//!
//! Dropping the [`Session`] detaches and unloads everything (nothing is pinned, and no tracefs
//! probe events are created: aya attaches uprobes through the perf PMU).

mod attach;
pub mod consumer;
pub mod decode;
pub mod host;
pub mod kernel_offsets;
pub mod kprobe_multi;
pub mod late;
pub mod maps;
pub mod pending;
pub mod prepare;
mod proginfo;
pub mod providers;
pub mod ringbuf;
pub mod rtld;
pub mod scope;
pub mod session;
mod symbolize;
pub mod target;
mod tracee;
pub mod trigger;
pub mod uprobe_multi;

#[cfg(test)]
mod tests;

pub use decode::{Event, FaultRecord, Record};
pub use pending::LateProbes;
pub use session::{RuntimeError, Session};
pub use target::{ExitInfo, Target};
pub use trigger::Trigger;

use std::fmt;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tracer_common::script::{Stat, NSTATS};
use tracer_common::CompiledScript;

/// What the handler wants after a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `exit(status)` was executed.
    Exit(i32),
}

/// What was lost: a `stats` counter of the programs, or firings the kernel skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Stat(Stat),
    /// The kernel did not run a program because another eBPF program, or a bpf() call from
    /// userspace, was in progress on that CPU (the programs' `recursion_misses`).
    KernelSkipped,
}

/// A non-zero `stats` counter since the last report, worded as DTrace does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    pub kind: DropKind,
    /// The CPU, for the per-CPU kinds (`Drops`, `AggDrops`); `None` for totals.
    pub cpu: Option<u32>,
    pub count: u64,
}

impl fmt::Display for DropReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.count;
        let s = if n == 1 { "" } else { "s" };
        let cpu = self.cpu.unwrap_or(0);
        let stat = match self.kind {
            DropKind::Stat(stat) => stat,
            DropKind::KernelSkipped => {
                return write!(
                    f,
                    "{n} probe firing{s} skipped by the kernel: another eBPF program or bpf() call was in progress on that CPU"
                )
            }
        };
        match stat {
            Stat::Drops => write!(f, "{n} drop{s} on CPU {cpu}"),
            Stat::AggDrops => write!(f, "{n} aggregation drop{s} on CPU {cpu}"),
            Stat::DynDrops => write!(f, "{n} dynamic variable drop{s}"),
            Stat::SpecUnavail => write!(
                f,
                "{n} failed speculation{s} (no speculative buffer available)"
            ),
            Stat::SpecDrops => write!(f, "{n} speculative drop{s}"),
            Stat::ErrorDrops => write!(f, "{n} error{s} in ERROR probe enabling"),
            Stat::PreemptDrops => write!(
                f,
                "{n} drop{s} on CPU {cpu}: a probe fired while another firing was preempted there"
            ),
        }
    }
}

/// The caller's side of the event loop: printing and the D actions that act on the session
/// (printa, clear, trunc, exit, ...).
pub trait RecordHandler {
    /// One clause record.
    fn record(&mut self, session: &mut Session, record: Record) -> anyhow::Result<Flow>;

    /// A message for the user that is not a record (a fault, a drop, a probe that could not
    /// be enabled), worded as dtrace(1) words it without its `tracer: ` prefix. The library
    /// prints nothing itself: a command-line consumer writes these to stderr.
    fn notice(&mut self, message: &str);

    /// A runtime fault in generated code. The default words DTrace's message as a notice.
    fn fault(&mut self, session: &mut Session, fault: FaultRecord) -> anyhow::Result<Flow> {
        let script = session.script();
        let probe = script
            .clauses
            .get(fault.epid as usize)
            .and_then(|c| script.probes.get(c.probe as usize));
        let (id, name) = probe.map_or((0, String::from("?")), |p| (p.id, p.full_name()));
        let what = fault.fault.map_or("unknown fault", |f| f.message());
        let place = if fault.action == 0 {
            "predicate".to_string()
        } else {
            format!("action #{}", fault.action)
        };
        // Only address faults name the address, as in DTrace.
        let addr = match fault.fault {
            Some(
                tracer_common::record::Fault::BadAddr | tracer_common::record::Fault::BadAlign,
            ) => {
                format!(" ({:#x})", fault.addr)
            }
            _ => String::new(),
        };
        self.notice(&format!(
            "error on enabled probe ID {} (ID {id}: {name}): {what}{addr} in {place}",
            fault.epid + 1
        ));
        Ok(Flow::Continue)
    }

    /// A batch of records has been handed over: a good moment to flush buffered output.
    fn batch_done(&mut self) {}

    /// Lost data (`stats` counters). The default words the report as a notice.
    fn drops(&mut self, report: DropReport) {
        self.notice(&report.to_string());
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `exit()` was executed (in BEGIN or a later probe).
    Exit,
    /// The `-c`/`-p` target exited.
    TargetExited(ExitInfo),
    /// SIGINT or SIGTERM.
    Signal(i32),
}

/// The end of a run: the session is still loaded so the caller can print aggregations; drop
/// it to unload everything.
pub struct RunOutcome {
    pub reason: StopReason,
    /// The status of the last `exit()` (0 when none ran).
    pub status: i32,
    pub session: Session,
}

/// An eBPF program loaded on the system, whoever loaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedProgram {
    pub id: u32,
    /// The name given at load (at most 15 bytes).
    pub name: String,
    /// `bpf_prog_type` (2 = kprobe, 26 = tracing: fentry/fexit).
    pub prog_type: u32,
}

/// Every eBPF program loaded on the system. A program unloaded during the walk is left out.
pub fn loaded_programs() -> Vec<LoadedProgram> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|p| LoadedProgram {
            id: p.id(),
            name: p.name_as_str().unwrap_or_default().to_string(),
            prog_type: p.program_type() as u32,
        })
        .collect()
}

/// Kernel ids of every loaded eBPF program on the system.
pub fn loaded_program_ids() -> Vec<u32> {
    loaded_programs().into_iter().map(|p| p.id).collect()
}

/// Per-CPU counter totals not yet reported.
struct DropTracker {
    seen: Vec<[u64; NSTATS as usize]>,
    /// Firings the kernel skipped, as reported so far.
    skipped: u64,
}

impl DropTracker {
    fn report(&mut self, session: &Session, handler: &mut dyn RecordHandler) {
        let Ok(now) = session.stats() else { return };
        self.seen.resize(now.len(), [0; NSTATS as usize]);
        let stats = [
            Stat::Drops,
            Stat::DynDrops,
            Stat::AggDrops,
            Stat::SpecUnavail,
            Stat::SpecDrops,
            Stat::ErrorDrops,
            Stat::PreemptDrops,
        ];
        for stat in stats {
            let i = stat as usize;
            let per_cpu = matches!(stat, Stat::Drops | Stat::AggDrops | Stat::PreemptDrops);
            let mut total = 0;
            for (cpu, (n, seen)) in now.iter().zip(&mut self.seen).enumerate() {
                let delta = n[i].saturating_sub(seen[i]);
                seen[i] = n[i];
                if per_cpu && delta > 0 {
                    handler.drops(DropReport {
                        kind: DropKind::Stat(stat),
                        cpu: Some(cpu as u32),
                        count: delta,
                    });
                }
                total += delta;
            }
            if !per_cpu && total > 0 {
                handler.drops(DropReport {
                    kind: DropKind::Stat(stat),
                    cpu: None,
                    count: total,
                });
            }
        }
        let misses = session.kernel_skipped();
        if misses > self.skipped {
            handler.drops(DropReport {
                kind: DropKind::KernelSkipped,
                cpu: None,
                count: misses - self.skipped,
            });
            self.skipped = misses;
        }
    }
}

/// Decode and hand over records in order. With `only_end`, records of probes other than END
/// (fired after the run stopped) are dropped. Returns the last `exit()` status seen.
fn dispatch(
    session: &mut Session,
    handler: &mut dyn RecordHandler,
    records: Vec<Vec<u8>>,
    only_end: bool,
) -> anyhow::Result<Option<i32>> {
    let mut exit = None;
    for bytes in records {
        let event = session.decode(&bytes)?;
        let epid = match &event {
            Event::Record(r) => r.header.epid,
            Event::Fault(f) => f.epid,
        };
        if only_end && !is_end_clause(session.script(), epid) {
            continue;
        }
        let flow = match event {
            Event::Record(r) => handler.record(session, r)?,
            Event::Fault(f) => handler.fault(session, f)?,
        };
        if let Flow::Exit(status) = flow {
            exit = Some(status);
            if !only_end {
                // Nothing recorded after exit() is shown, as in DTrace.
                break;
            }
        }
    }
    handler.batch_done();
    Ok(exit)
}

fn is_end_clause(script: &CompiledScript, epid: u32) -> bool {
    let probe = script
        .clauses
        .get(epid as usize)
        .and_then(|c| script.probes.get(c.probe as usize));
    probe.is_some_and(|p| p.provider == "dtrace" && p.name == "END")
}

/// Run `script` to completion: see the module documentation.
pub async fn run(
    script: &CompiledScript,
    target: Option<&mut Target>,
    handler: &mut dyn RecordHandler,
) -> anyhow::Result<RunOutcome> {
    run_with_late(script, target, handler, None).await
}

/// Stop `t` at each dlopen() so that the `pending` descriptions can be matched again.
fn watch_dlopen(
    t: &mut Target,
    pending: &[String],
    handler: &mut dyn RecordHandler,
) -> Option<pending::Watch> {
    match pending::Watch::start(t.pid()) {
        Ok(w) => {
            t.set_stop_check(w.stop_check());
            Some(w)
        }
        // Not quiet-able: probes the user asked for will not fire.
        Err(e) => {
            handler.notice(&format!(
                "warning: {} cannot be enabled when pid {} loads a library: {e}",
                pending.join(", "),
                t.pid()
            ));
            None
        }
    }
}

/// Whether the script has descriptions of the target that matched nothing yet (-Z).
fn has_pending(script: &CompiledScript) -> bool {
    script
        .programs
        .iter()
        .any(|p| matches!(p.attach, tracer_common::Attach::Pending { .. }))
}

/// [`run`], matching the pending descriptions again (`late`) whenever the target maps a
/// library (see `pending`).
pub async fn run_with_late(
    script: &CompiledScript,
    mut target: Option<&mut Target>,
    handler: &mut dyn RecordHandler,
    mut late: Option<&mut dyn LateProbes>,
) -> anyhow::Result<RunOutcome> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut session = Session::open(script)?;
    if let Some(first) = session.skipped.first() {
        // Not silent: say how many kernel functions refused a probe, and why the first did.
        let n = session.skipped.len();
        handler.notice(&format!(
            "{n} probe{} could not be enabled and {} skipped; the first: {first}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" }
        ));
    }
    let mut events = session.take_events()?;
    let mut drops = DropTracker {
        seen: Vec::new(),
        skipped: 0,
    };
    let mut status = 0;

    let pending = match late.as_deref() {
        Some(l) if has_pending(script) => l.pending(),
        _ => Vec::new(),
    };
    let mut watch: Option<pending::Watch> = None;
    // A grabbed (-p) process runs on: watch its dlopen()s before BEGIN, so that a library it
    // loads once BEGIN has run is never missed.
    if let Some(t) = target.as_deref_mut().filter(|t| !t.created()) {
        if !pending.is_empty() {
            watch = watch_dlopen(t, &pending, handler);
        }
    }
    session.fire(Trigger::Begin);
    session.start_probes()?;
    let mut reason = None;
    if let Some(s) = dispatch(&mut session, handler, events.drain(), false)? {
        status = s;
        reason = Some(StopReason::Exit);
    }
    if reason.is_none() {
        if let Some(t) = target.as_deref_mut() {
            t.release()?;
            if let Some(copy) = t.maps_copy() {
                session.decoder().symbols.follow_copies(t.pid(), copy);
            }
            // The new image and its libraries are mapped now (held at its entry): remember them.
            session.decoder().symbols.remember_process(t.pid());
            // A created (-c) one is held at its entry point: ld.so's r_debug is set up now.
            if t.created() && !pending.is_empty() {
                watch = watch_dlopen(t, &pending, handler);
            }
            t.resume()?;
        }
    }
    let period = Duration::from_nanos(script.options.switchrate_ns.max(10_000_000));
    let mut tick = tokio::time::interval(period);
    // The target's mappings are copied while it lives, so its user stacks still symbolize
    // after it exits.
    let target_pid = target.as_deref().map(|t| t.pid());
    let mut remember = tokio::time::interval(Duration::from_millis(20));
    // How soon a process the dlopen stopper stopped is noticed.
    let mut dlopen = tokio::time::interval(Duration::from_millis(2));
    dlopen.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while reason.is_none() {
        let exited = async {
            match target.as_deref_mut() {
                Some(t) => t.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            batch = events.next_batch() => {
                if let Some(s) = dispatch(&mut session, handler, batch?, false)? {
                    status = s;
                    reason = Some(StopReason::Exit);
                }
            }
            info = exited => reason = Some(StopReason::TargetExited(info?)),
            _ = sigint.recv() => reason = Some(StopReason::Signal(libc::SIGINT)),
            _ = sigterm.recv() => reason = Some(StopReason::Signal(libc::SIGTERM)),
            _ = tick.tick() => drops.report(&session, handler),
            _ = remember.tick(), if target_pid.is_some() => {
                session.decoder().symbols.remember_process(target_pid.unwrap_or(0));
            }
            _ = dlopen.tick(), if watch.is_some() => {
                if let Some(w) = watch.as_ref().filter(|w| w.take_hit()) {
                    // Stopped at r_brk: the new library's probes go in before it runs.
                    let mut notice = |m: &str| handler.notice(m);
                    if let Some(new) = late.as_deref_mut().and_then(|l| l.refresh(&mut notice)) {
                        if let Err(e) = session.add_late(new) {
                            handler.notice(&e.to_string());
                        }
                    }
                    w.resume();
                }
            }
        }
    }
    let mut reason = reason.unwrap_or(StopReason::Exit);
    // No more stops at dlopen(), and none left in effect (see `pending::Watch`).
    drop(watch.take());
    session.stop_probes();
    if reason != StopReason::Exit {
        // Show everything recorded before the probes stopped, as DTrace does on a signal or
        // the target's exit (draining before stopping would lose the last firings' records).
        if let Some(s) = dispatch(&mut session, handler, events.drain(), false)? {
            status = s;
            reason = StopReason::Exit;
        }
    }
    session.fire(Trigger::End);
    if let Some(s) = dispatch(&mut session, handler, events.drain(), true)? {
        status = s;
    }
    drops.report(&session, handler);
    Ok(RunOutcome {
        reason,
        status,
        session,
    })
}
