//! Everything tracer prints on stdout, byte for byte as DTrace (dtrace-utils on Linux)
//! lays it out, plus a JSON lines alternative.
//!
//! * [`Printer`] — what the runtime drives: `begin_clause`, then the clause's actions
//!   (`trace`, `printf`, `printa`, `stack`, ...), then `end_clause`; at the end
//!   `final_dump`. One type per output format: `text.rs` ([`TextPrinter`], DTrace's
//!   layouts) and `json.rs` ([`JsonPrinter`], `--format json`, schema documented there);
//!   `output.rs` holds what they share (the writer, the options, printa's bookkeeping).
//!   Another format is another file implementing [`Printer`].
//! * `printf.rs` — the printf engine's rendering (also used by printa), over formats parsed
//!   and checked by `tracer-format`; `cfmt.rs` — the C library calls that render each
//!   conversion.
//! * `trace.rs` — trace()/stack()/tracemem() record layouts.
//! * `aggregate.rs` — aggregation layouts, printa, sorting.
//! * `histogram.rs` — quantize/lquantize/llquantize.
//!
//! Printers write only to the writer they are given.

pub mod aggregate;
mod cfmt;
mod histogram;
pub mod json;
mod output;
pub mod printf;
mod text;
mod trace;

#[cfg(test)]
mod aggregate_tests;
#[cfg(test)]
mod printf_tests;

pub use json::JsonPrinter;
pub use text::TextPrinter;
pub use tracer_format::{Format, FormatError};

use std::io::Write;
use tracer_common::{AggSnapshot, Options, ProbeDesc, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Writes every piece of tracing output in one format. Write errors are kept by the printer
/// (the first one; later writes are dropped), not returned.
pub trait Printer {
    /// Start of one clause firing that produced a record.
    fn begin_clause(&mut self, probe: &ProbeDesc, cpu: u32);
    /// `trace(v)`.
    fn trace(&mut self, v: &Value);
    /// `printf(fmt, args...)`.
    fn printf(&mut self, fmt: &Format, args: &[Value]) -> Result<(), FormatError>;
    /// `printa([fmt,] @a, ...)` with snapshots of the named aggregations.
    fn printa(&mut self, fmt: Option<&Format>, aggs: &[&AggSnapshot]) -> Result<(), FormatError>;
    /// `stack()` / `ustack()` with symbolized frames.
    fn stack(&mut self, frames: &[String], user: bool);
    /// End of the clause's record.
    fn end_clause(&mut self);
    /// End of run: every aggregation not printed by printa, in definition order (reversed
    /// with `aggsortrev`).
    fn final_dump(&mut self, aggs: &[&AggSnapshot]);
    fn flush(&mut self);
}

/// The printer for `format`, writing to `out`.
pub fn printer(out: Box<dyn Write>, format: OutputFormat, opts: &Options) -> Box<dyn Printer> {
    match format {
        OutputFormat::Text => Box::new(TextPrinter::new(out, opts)),
        OutputFormat::Json => Box::new(JsonPrinter::new(out, opts)),
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

    fn printer(format: OutputFormat, quiet: bool) -> (Box<dyn Printer>, Sink) {
        let sink = Sink::default();
        let opts = Options {
            quiet,
            ..Options::default()
        };
        (super::printer(Box::new(sink.clone()), format, &opts), sink)
    }
    fn fmt(s: &str) -> Format {
        Format::parse(s).unwrap()
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
        p.printa(Some(&fmt("%@u")), &[&a]).unwrap();
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
        let mut p = TextPrinter::new(Box::new(sink.clone()), &opts);
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
        p.printf(&fmt("x=%d\n"), &[Value::int(5)]).unwrap();
        p.trace(&Value::Str("s".into()));
        p.end_clause();
        let a = count("a", 3);
        p.final_dump(&[&a]);
        assert_eq!(
            sink.text(),
            "{\"type\":\"printf\",\"probe\":\"dtrace:::BEGIN\",\"cpu\":0,\"msg\":\"x=5\\n\"}\n\
             {\"type\":\"trace\",\"probe\":\"dtrace:::BEGIN\",\"cpu\":0,\"value\":\"s\"}\n\
             {\"type\":\"aggregation\",\"name\":\"@a\",\"func\":\"count\",\"entries\":[{\"keys\":[],\"value\":3}]}\n"
        );
    }
}
