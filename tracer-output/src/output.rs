//! What every printer shares: the writer (keeping its first error), the options, and which
//! aggregations printa has printed (the end-of-run dump skips those).

use crate::aggregate::{self, SortOpts};
use std::collections::HashSet;
use std::io::Write;
use tracer_common::{AggSnapshot, Options};
use tracer_format::{Format, FormatError};

pub(crate) struct Output {
    out: Box<dyn Write>,
    /// The first write error (e.g. EPIPE); later writes are dropped.
    error: Option<std::io::Error>,
    pub(crate) opts: Options,
    /// Names of aggregations printed by printa (skipped by the final dump).
    printed: HashSet<String>,
}

impl Output {
    pub(crate) fn new(out: Box<dyn Write>, opts: &Options) -> Output {
        Output {
            out,
            error: None,
            opts: opts.clone(),
            printed: HashSet::new(),
        }
    }

    pub(crate) fn emit(&mut self, bytes: &[u8]) {
        if self.error.is_none() && !bytes.is_empty() {
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some(e);
            }
        }
    }

    pub(crate) fn sort(&self) -> SortOpts {
        SortOpts::from_options(&self.opts)
    }

    pub(crate) fn strsize(&self) -> usize {
        self.opts.strsize as usize
    }

    /// printa's text (what the text printer writes), marking the aggregations printed.
    pub(crate) fn printa(
        &mut self,
        fmt: Option<&Format>,
        aggs: &[&AggSnapshot],
    ) -> Result<Vec<u8>, FormatError> {
        let mut o = Vec::new();
        aggregate::printa(&mut o, fmt, aggs, &self.sort(), self.strsize())?;
        for a in aggs {
            self.printed.insert(a.desc.name.clone());
        }
        Ok(o)
    }

    /// The aggregations the end-of-run dump prints: those printa has not printed, in
    /// definition order (reversed with `aggsortrev`, as DTrace's sort includes the variable
    /// id).
    pub(crate) fn unprinted<'a>(&self, aggs: &[&'a AggSnapshot]) -> Vec<&'a AggSnapshot> {
        let mut todo: Vec<&AggSnapshot> = aggs
            .iter()
            .copied()
            .filter(|a| !self.printed.contains(&a.desc.name))
            .collect();
        if self.sort().rev {
            todo.reverse();
        }
        todo
    }
}
