//! Everything tracer prints on stdout, byte for byte as DTrace (dtrace-utils on Linux)
//! lays it out, plus a JSON lines alternative.
//!
//! * `printf.rs` — the printf engine (also used by printa); `check.rs` — its compile-time
//!   prototype checks; `cfmt.rs` — the C library calls that render each conversion.
//! * `trace.rs` — trace()/stack()/tracemem() record layouts.
//! * `aggregate.rs` — aggregation layouts, printa, sorting, trunc helpers.
//! * `histogram.rs` — quantize/lquantize/llquantize.
//! * `json.rs` — `--format json` (schema documented there).
//!
//! The runtime drives a [`Printer`]: `begin_clause`, then the clause's actions (`trace`,
//! `printf`, `printa`, `stack`, ...), then `end_clause`; at the end `final_dump`, `exit`.
#![allow(dead_code)] // The runtime (main.rs) is written separately and calls into this later.

pub mod aggregate;
pub mod cfmt;
pub mod check;
pub mod histogram;
pub mod json;
pub mod printf;
pub mod trace;

#[cfg(test)]
mod aggregate_tests;
#[cfg(test)]
mod printf_tests;

pub use printf::FormatError;

use aggregate::SortOpts;
use std::collections::HashSet;
use std::io::Write;
use tracer_common::{AggSnapshot, Options, ProbeDesc, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Writes every piece of tracing output, in text (DTrace's layouts) or JSON lines.
pub struct Printer {
    out: Box<dyn Write>,
    format: OutputFormat,
    opts: Options,
    heading: bool,
    /// Names of aggregations printed by printa (skipped by the final dump).
    printed: HashSet<String>,
    clause: Option<(ProbeDesc, u32)>,
    /// `-F` state: current indent and the probe of the previous firing.
    indent: usize,
    last_probe: Option<u32>,
    error: Option<std::io::Error>,
}

impl Printer {
    pub fn new(out: Box<dyn Write>, format: OutputFormat, opts: &Options) -> Printer {
        Printer {
            out,
            format,
            opts: opts.clone(),
            heading: false,
            printed: HashSet::new(),
            clause: None,
            indent: 0,
            last_probe: None,
            error: None,
        }
    }

    /// Options changed at run time (`setopt()`): quiet, aggsort*, flowindent, strsize.
    pub fn set_options(&mut self, opts: &Options) {
        self.opts = opts.clone();
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The first write error (e.g. EPIPE), if any; later writes are dropped.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        self.error.as_ref()
    }

    fn emit(&mut self, bytes: &[u8]) {
        if self.error.is_none() && !bytes.is_empty() {
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }

    fn text(&self) -> bool {
        self.format == OutputFormat::Text
    }

    fn sort(&self) -> SortOpts {
        SortOpts::from_options(&self.opts)
    }

    fn clause_ref(&self) -> Option<(&ProbeDesc, u32)> {
        self.clause.as_ref().map(|(p, c)| (p, *c))
    }

    /// Start of one clause firing that produced a record. In non-quiet text mode this
    /// prints the `CPU     ID                    FUNCTION:NAME` heading once, then the row
    /// prefix `"%3d %6d %32s "` (cpu, probe id, `function:name`). With `flowindent` the
    /// heading is `"%3s %-41s\n"` and rows `"%3d %-41s "` with `->`/`<-` indentation.
    pub fn begin_clause(&mut self, probe: &ProbeDesc, cpu: u32) {
        self.clause = Some((probe.clone(), cpu));
        if !self.text() {
            return;
        }
        if self.opts.flowindent {
            if !self.heading {
                self.emit(format!("{:>3} {:<41}\n", "CPU", "FUNCTION").as_bytes());
                self.heading = true;
            }
            let row = self.flow_row(probe);
            self.emit(format!("{cpu:>3} {row:<41} ").as_bytes());
        } else {
            if !self.heading && !self.opts.quiet {
                self.emit(format!("{:>3} {:>6} {:>32}\n", "CPU", "ID", "FUNCTION:NAME").as_bytes());
            }
            self.heading = true;
            if !self.opts.quiet {
                let name = format!("{}:{}", probe.function, probe.name);
                self.emit(format!("{cpu:>3} {:>6} {name:>32} ", probe.id).as_bytes());
            }
        }
        self.last_probe = Some(probe.id);
    }

    /// `dt_flowindent`: entry probes (`entry`, `*-entry`) indent, returns unindent. A
    /// further clause of the probe that just fired is not indented again.
    fn flow_row(&mut self, probe: &ProbeDesc) -> String {
        let n = probe.name.as_str();
        let syscall = usize::from(probe.provider == "syscall");
        let entry = n == "entry" || n.ends_with("-entry");
        let ret = n == "return" || n.ends_with("-return");
        let entry = entry && self.last_probe != Some(probe.id);
        let pad = " ".repeat(self.indent);
        let row = if entry {
            format!("{pad}{}{}", [" -> ", " => "][syscall], probe.function)
        } else if ret {
            self.indent = self.indent.saturating_sub(2);
            format!(
                "{}{}{}",
                " ".repeat(self.indent),
                [" <- ", " <= "][syscall],
                probe.function
            )
        } else {
            format!("{pad}| {}:{}", probe.function, probe.name)
        };
        if entry {
            self.indent += 2;
        }
        row
    }

    /// `trace(v)`.
    pub fn trace(&mut self, v: &Value) {
        if self.text() {
            let mut o = Vec::new();
            trace::trace_value(&mut o, v, self.opts.quiet);
            self.emit(&o);
        } else {
            let r = json::record(
                "trace",
                self.clause_ref(),
                &json::TraceBody {
                    value: json::value(v),
                },
            );
            self.emit(&r);
        }
    }

    /// `tracemem(addr, size)`: always a hex dump.
    pub fn tracemem(&mut self, bytes: &[u8]) {
        if self.text() {
            let mut o = Vec::new();
            trace::rawbytes(&mut o, bytes);
            self.emit(&o);
        } else {
            let body = json::TraceBody {
                value: json::JValue::Bytes(bytes.to_vec()),
            };
            let r = json::record("trace", self.clause_ref(), &body);
            self.emit(&r);
        }
    }

    /// `printf(fmt, args...)`.
    pub fn printf(&mut self, fmt: &str, args: &[Value]) -> Result<(), FormatError> {
        let bytes = printf::format_bytes(fmt, args)?;
        if self.text() {
            self.emit(&bytes);
        } else {
            let body = json::PrintfBody {
                msg: String::from_utf8_lossy(&bytes).into_owned(),
            };
            let r = json::record("printf", self.clause_ref(), &body);
            self.emit(&r);
        }
        Ok(())
    }

    /// `printa([fmt,] @a, ...)` with snapshots of the named aggregations.
    pub fn printa(&mut self, fmt: Option<&str>, aggs: &[&AggSnapshot]) -> Result<(), FormatError> {
        let sort = self.sort();
        let mut o = Vec::new();
        aggregate::printa(&mut o, fmt, aggs, &sort, self.opts.strsize as usize)?;
        for a in aggs {
            self.printed.insert(a.desc.name.clone());
        }
        if self.text() {
            self.emit(&o);
        } else {
            let body = json::PrintaBody {
                format: fmt,
                msg: String::from_utf8_lossy(&o).into_owned(),
                aggregations: aggs.iter().map(|a| json::aggregation(a, &sort)).collect(),
            };
            let r = json::record("printa", self.clause_ref(), &body);
            self.emit(&r);
        }
        Ok(())
    }

    /// `stack()` / `ustack()` with symbolized frames.
    pub fn stack(&mut self, frames: &[String], user: bool) {
        if self.text() {
            let mut o = Vec::new();
            trace::stack(&mut o, frames, user);
            self.emit(&o);
        } else {
            let r = json::record(
                "stack",
                self.clause_ref(),
                &json::StackBody { user, frames },
            );
            self.emit(&r);
        }
    }

    /// End of the clause's record: the row's newline in non-quiet text mode.
    pub fn end_clause(&mut self) {
        if self.text() && !self.opts.quiet {
            self.emit(b"\n");
        }
        self.clause = None;
    }

    /// dtrace(1)'s extra newline after an interrupt (^C), printed even when quiet.
    pub fn interrupted(&mut self) {
        if self.text() {
            self.emit(b"\n");
        }
    }

    /// End of run: `"\n"`, then every aggregation not printed by printa, in definition
    /// order (reversed with `aggsortrev`, as DTrace's sort includes the variable id), in
    /// the default layout.
    pub fn final_dump(&mut self, aggs: &[&AggSnapshot]) {
        let sort = self.sort();
        let mut todo: Vec<&AggSnapshot> = aggs
            .iter()
            .copied()
            .filter(|a| !self.printed.contains(&a.desc.name))
            .collect();
        if sort.rev {
            todo.reverse();
        }
        if self.text() {
            let mut o = vec![b'\n'];
            for a in todo {
                aggregate::print_default(&mut o, a, &sort, self.opts.strsize as usize);
            }
            self.emit(&o);
        } else {
            for a in todo.into_iter().filter(|a| !a.entries.is_empty()) {
                let l = json::line(&json::aggregation(a, &sort));
                self.emit(&l);
            }
        }
    }

    /// The exit status (JSON only; text mode prints nothing).
    pub fn exit(&mut self, status: i32) {
        if !self.text() {
            let r = json::record("exit", None, &json::ExitBody { status });
            self.emit(&r);
        }
    }

    pub fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracer_common::{AggDesc, AggEntry, AggFunc, AggValue};

    /// A Write that can be inspected after the Printer owns it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn printer(format: OutputFormat, quiet: bool) -> (Printer, Sink) {
        let sink = Sink::default();
        let opts = Options {
            quiet,
            ..Options::default()
        };
        (Printer::new(Box::new(sink.clone()), format, &opts), sink)
    }
    fn begin() -> ProbeDesc {
        ProbeDesc {
            id: 1,
            provider: "dtrace".into(),
            module: "".into(),
            function: "".into(),
            name: "BEGIN".into(),
        }
    }
    fn count(name: &str, n: i64) -> AggSnapshot {
        AggSnapshot {
            desc: AggDesc {
                name: name.into(),
                func: AggFunc::Count,
                map: String::new(),
                keys: vec![],
                key_size: 8,
                max_entries: 0,
            },
            entries: vec![AggEntry {
                keys: vec![],
                value: AggValue::Scalar(n),
            }],
            normal: 1,
        }
    }
    const ROW: &str = "  0      1                           :BEGIN ";

    #[test]
    fn count_notquiet() {
        // aggs/tst.count_notquiet (the .r omits the CPU/ID columns: test mode).
        let (mut p, sink) = printer(OutputFormat::Text, false);
        for i in 0..5 {
            p.begin_clause(&begin(), 0);
            if i == 3 {
                p.trace(&Value::Str("hello world".into()));
            }
            p.end_clause();
        }
        let a = count("a", 10);
        p.final_dump(&[&a]);
        let want = format!(
            "CPU     ID                    FUNCTION:NAME\n{ROW}\n{ROW}\n{ROW}\n{ROW}  hello world{}\n{ROW}\n\n               10\n",
            " ".repeat(22)
        );
        assert_eq!(sink.text(), want);
    }

    #[test]
    fn trace_string_and_post_inc() {
        // trace/tst.string.
        let (mut p, sink) = printer(OutputFormat::Text, false);
        p.begin_clause(&begin(), 0);
        p.trace(&Value::Str("this".into()));
        p.trace(&Value::Str(" %should work.\n".into()));
        p.trace(&Value::Str(
            "%don't w%orry -- this won't cause a %segfault.\n".into(),
        ));
        p.end_clause();
        p.final_dump(&[]);
        assert_eq!(
            sink.text(),
            format!(
                "CPU     ID                    FUNCTION:NAME\n{ROW}  this{}%should work.\n{}%don't w%orry -- \
                 this won't cause a %segfault.\n\n\n",
                " ".repeat(32),
                " ".repeat(20)
            )
        );
        // variables/tvar/tst.post_inc_lvar: trace(self->x++) of a signed 8-byte 0.
        let (mut p, sink) = printer(OutputFormat::Text, false);
        p.begin_clause(&begin(), 0);
        p.trace(&Value::int(0));
        p.end_clause();
        assert!(sink
            .text()
            .ends_with(&format!("{ROW}                   0\n")));
    }

    #[test]
    fn quiet_count_and_printa_marks_printed() {
        // aggs/tst.count: "\n" then the value.
        let (mut p, sink) = printer(OutputFormat::Text, true);
        p.begin_clause(&begin(), 0);
        p.end_clause();
        let a = count("a", 2);
        p.final_dump(&[&a]);
        assert_eq!(sink.text(), "\n                2\n");
        // printa/tst.def + tst.fmt: printed aggregations are not dumped again.
        let (mut p, sink) = printer(OutputFormat::Text, true);
        let a = count("a", 1);
        p.printa(None, &[&a]).unwrap();
        p.printa(Some("%@u"), &[&a]).unwrap();
        p.final_dump(&[&a]);
        assert_eq!(sink.text(), "\n                1\n1\n");
    }

    #[test]
    fn flowindent_rows() {
        let sink = Sink::default();
        let opts = Options {
            flowindent: true,
            ..Options::default()
        };
        let mut p = Printer::new(Box::new(sink.clone()), OutputFormat::Text, &opts);
        let probe = |id, f: &str, n: &str| ProbeDesc {
            id,
            provider: "fbt".into(),
            module: "vmlinux".into(),
            function: f.into(),
            name: n.into(),
        };
        for pd in [
            probe(10, "a", "entry"),
            probe(11, "b", "entry"),
            probe(12, "b", "return"),
            probe(13, "a", "return"),
        ] {
            p.begin_clause(&pd, 1);
            p.end_clause();
        }
        let rows: Vec<String> = sink
            .text()
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        assert_eq!(
            rows,
            vec![
                "CPU FUNCTION",
                "  1  -> a",
                "  1    -> b",
                "  1    <- b",
                "  1  <- a"
            ]
        );
    }

    #[test]
    fn json_lines() {
        let (mut p, sink) = printer(OutputFormat::Json, false);
        p.begin_clause(&begin(), 0);
        p.printf("x=%d\n", &[Value::int(5)]).unwrap();
        p.trace(&Value::Str("s".into()));
        p.end_clause();
        let a = count("a", 3);
        p.final_dump(&[&a]);
        p.exit(0);
        assert_eq!(
            sink.text(),
            "{\"type\":\"printf\",\"probe\":\"dtrace:::BEGIN\",\"cpu\":0,\"msg\":\"x=5\\n\"}\n\
             {\"type\":\"trace\",\"probe\":\"dtrace:::BEGIN\",\"cpu\":0,\"value\":\"s\"}\n\
             {\"type\":\"aggregation\",\"name\":\"@a\",\"func\":\"count\",\"entries\":[{\"keys\":[],\"value\":3}]}\n\
             {\"type\":\"exit\",\"status\":0}\n"
        );
    }
}
