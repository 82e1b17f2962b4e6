//! The text printer: DTrace's layouts, byte for byte.

use crate::output::Output;
use crate::{aggregate, printf, trace, Printer};
use std::io::Write;
use tracer_common::{AggSnapshot, Options, ProbeDesc, Value};
use tracer_format::{Format, FormatError};

/// Prints records as dtrace(1) does.
pub struct TextPrinter {
    out: Output,
    /// Whether the `CPU ID FUNCTION:NAME` heading has been printed (or is not wanted).
    heading: bool,
    /// `-F` state: current indent and the probe of the previous firing.
    indent: usize,
    last_probe: Option<u32>,
}

impl TextPrinter {
    pub fn new(out: Box<dyn Write>, opts: &Options) -> TextPrinter {
        TextPrinter {
            out: Output::new(out, opts),
            heading: false,
            indent: 0,
            last_probe: None,
        }
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
}

impl Printer for TextPrinter {
    /// In non-quiet mode: the `CPU     ID                    FUNCTION:NAME` heading once,
    /// then the row prefix `"%3d %6d %32s "` (cpu, probe id, `function:name`). With
    /// `flowindent` the heading is `"%3s %-41s\n"` and rows `"%3d %-41s "` with `->`/`<-`
    /// indentation.
    fn begin_clause(&mut self, probe: &ProbeDesc, cpu: u32) {
        let quiet = self.out.opts.quiet;
        if self.out.opts.flowindent {
            if !self.heading {
                self.out
                    .emit(format!("{:>3} {:<41}\n", "CPU", "FUNCTION").as_bytes());
                self.heading = true;
            }
            let row = self.flow_row(probe);
            self.out.emit(format!("{cpu:>3} {row:<41} ").as_bytes());
        } else {
            if !self.heading && !quiet {
                self.out
                    .emit(format!("{:>3} {:>6} {:>32}\n", "CPU", "ID", "FUNCTION:NAME").as_bytes());
            }
            self.heading = true;
            if !quiet {
                let name = format!("{}:{}", probe.function, probe.name);
                self.out
                    .emit(format!("{cpu:>3} {:>6} {name:>32} ", probe.id).as_bytes());
            }
        }
        self.last_probe = Some(probe.id);
    }

    fn trace(&mut self, v: &Value) {
        let mut o = Vec::new();
        trace::trace_value(&mut o, v, self.out.opts.quiet);
        self.out.emit(&o);
    }

    fn printf(&mut self, fmt: &Format, args: &[Value]) -> Result<(), FormatError> {
        let bytes = printf::format_bytes(fmt, args)?;
        self.out.emit(&bytes);
        Ok(())
    }

    fn printa(&mut self, fmt: Option<&Format>, aggs: &[&AggSnapshot]) -> Result<(), FormatError> {
        let o = self.out.printa(fmt, aggs)?;
        self.out.emit(&o);
        Ok(())
    }

    fn stack(&mut self, frames: &[String], user: bool) {
        let mut o = Vec::new();
        trace::stack(&mut o, frames, user);
        self.out.emit(&o);
    }

    /// The row's newline in non-quiet mode.
    fn end_clause(&mut self) {
        if !self.out.opts.quiet {
            self.out.emit(b"\n");
        }
    }

    /// `"\n"`, then each aggregation printa has not printed, in the default layout.
    fn final_dump(&mut self, aggs: &[&AggSnapshot]) {
        let (sort, strsize) = (self.out.sort(), self.out.strsize());
        let mut o = vec![b'\n'];
        for a in self.out.unprinted(aggs) {
            aggregate::print_default(&mut o, a, &sort, strsize);
        }
        self.out.emit(&o);
    }

    fn flush(&mut self) {
        self.out.flush();
    }
}
