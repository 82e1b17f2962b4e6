//! The consumer: what each recorded action does in userspace, as DTrace's consumer does it
//! (printing, printa, clear/trunc/normalize, exit, speculation buffers, system()).

use crate::{Flow, Record, RecordHandler, Session};
use std::collections::HashMap;
use tracer_common::{ActionKind, AggSnapshot, Value};
use tracer_output::Printer;

pub struct Consumer {
    pub printer: Box<dyn Printer>,
    /// normalize() factors by aggregation index.
    normals: HashMap<u32, u64>,
    /// Records held by speculation id until commit or discard, with their size in bytes.
    speculations: HashMap<u32, (Vec<Record>, u64)>,
    /// The `specsize` option: a speculation buffer holds at most this many bytes.
    specsize: u64,
    /// Speculative records dropped because their buffer was full, not yet reported.
    spec_drops: u64,
    /// Where notices go (the command line writes `tracer: MESSAGE` to stderr).
    notices: Box<dyn FnMut(&str)>,
}

impl Consumer {
    /// A consumer printing through `printer`; notices (faults, drops, failed actions) go to
    /// `notices`, worded without a `tracer: ` prefix.
    pub fn new(
        printer: Box<dyn Printer>,
        specsize: u64,
        notices: Box<dyn FnMut(&str)>,
    ) -> Consumer {
        Consumer {
            printer,
            normals: HashMap::new(),
            speculations: HashMap::new(),
            specsize,
            spec_drops: 0,
            notices,
        }
    }

    pub fn snapshot(&self, session: &mut Session, agg: u32) -> anyhow::Result<AggSnapshot> {
        let mut s = session.agg_snapshot(agg)?;
        s.normal = self.normals.get(&agg).copied().unwrap_or(1).max(1);
        Ok(s)
    }

    /// Every aggregation's snapshot, for the end-of-run dump.
    pub fn all_snapshots(&self, session: &mut Session) -> anyhow::Result<Vec<AggSnapshot>> {
        let n = session.script().aggs.len() as u32;
        (0..n).map(|i| self.snapshot(session, i)).collect()
    }

    fn perform(&mut self, session: &mut Session, record: Record) -> anyhow::Result<Flow> {
        let script = session.script();
        let clause = &script.clauses[record.header.epid as usize];
        // A program that stands for many probes names the one that fired: its site + 1.
        let probe = match record.header.site {
            0 => None,
            site => script.probes.get(site as usize - 1),
        }
        .unwrap_or(&script.probes[clause.probe as usize])
        .clone();
        self.printer.begin_clause(&probe, record.header.cpu);
        let mut flow = Flow::Continue;
        for (action, values) in record.actions {
            match &action.kind {
                ActionKind::Trace => self.printer.trace(&values[0]),
                ActionKind::Printf { format } => {
                    if let Err(e) = self.printer.printf(format, &values) {
                        self.notice(&format!("printf( ) failed: {e}"));
                    }
                }
                ActionKind::Printa { format, aggs } => {
                    let snaps = aggs
                        .iter()
                        .map(|a| self.snapshot(session, *a))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let refs: Vec<&AggSnapshot> = snaps.iter().collect();
                    if let Err(e) = self.printer.printa(format.as_ref(), &refs) {
                        self.notice(&format!("printa( ) failed: {e}"));
                    }
                }
                ActionKind::Clear { agg } => session.agg_clear(*agg)?,
                ActionKind::Trunc { agg } => {
                    let keep = values.first().and_then(Value::as_i64);
                    session.agg_trunc(*agg, keep)?;
                }
                ActionKind::Normalize { agg } => {
                    let n = values.first().and_then(Value::as_i64).unwrap_or(1);
                    if n <= 0 {
                        self.notice("normalize( ) factor must be positive");
                    } else {
                        self.normals.insert(*agg, n as u64);
                    }
                }
                ActionKind::Denormalize { agg } => {
                    self.normals.remove(agg);
                }
                ActionKind::Exit => {
                    let status = values.first().and_then(Value::as_i64).unwrap_or(0) as i32;
                    flow = Flow::Exit(status);
                }
                ActionKind::Stack | ActionKind::UStack => {
                    if let Some(Value::Stack(frames)) = values.first() {
                        self.printer
                            .stack(frames, matches!(action.kind, ActionKind::UStack));
                    }
                }
                ActionKind::Commit | ActionKind::Discard => {
                    let id = values.first().and_then(Value::as_i64).unwrap_or(0) as u32;
                    let (held, _) = self.speculations.remove(&id).unwrap_or_default();
                    if matches!(action.kind, ActionKind::Commit) {
                        for r in held {
                            if let Flow::Exit(s) = self.perform(session, r)? {
                                flow = Flow::Exit(s);
                            }
                        }
                    }
                }
                ActionKind::System { format } => {
                    match tracer_output::printf::format(format, &values) {
                        Ok(cmd) => {
                            self.printer.flush();
                            let _ = std::process::Command::new("/bin/sh")
                                .arg("-c")
                                .arg(&cmd)
                                .status();
                        }
                        Err(e) => self.notice(&format!("system( ) failed: {e}")),
                    }
                }
                ActionKind::Stop | ActionKind::Setopt { .. } => {}
            }
        }
        self.printer.end_clause();
        Ok(flow)
    }
}

impl RecordHandler for Consumer {
    fn batch_done(&mut self) {
        self.printer.flush();
    }

    fn notice(&mut self, message: &str) {
        // Records already printed come first, as they happened first.
        self.printer.flush();
        (self.notices)(message);
    }

    fn record(&mut self, session: &mut Session, record: Record) -> anyhow::Result<Flow> {
        if record.header.spec != 0 {
            let size = session
                .script()
                .clauses
                .get(record.header.epid as usize)
                .map_or(0, |c| c.size as u64);
            let (held, bytes) = self.speculations.entry(record.header.spec).or_default();
            if *bytes + size > self.specsize {
                self.spec_drops += 1;
            } else {
                *bytes += size;
                held.push(record);
            }
            return Ok(Flow::Continue);
        }
        if self.spec_drops > 0 {
            let n = std::mem::take(&mut self.spec_drops);
            self.notice(&format!(
                "{n} speculative drop{}",
                if n == 1 { "" } else { "s" }
            ));
        }
        self.perform(session, record)
    }
}
