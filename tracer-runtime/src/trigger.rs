//! BEGIN and END: their programs are raw_tracepoint programs that are loaded but never
//! attached. The session runs them itself with `BPF_PROG_TEST_RUN` (see
//! `Session::fire`), on the calling thread, so they see tracer's own pid and cost no probe
//! registration at start-up or exit.

/// Which of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    Begin,
    End,
}

impl Trigger {
    /// `Attach::Trigger { symbol }` → trigger. ERROR is not a trigger: generated code runs the
    /// ERROR clauses itself.
    pub fn from_symbol(symbol: &str) -> Result<Trigger, String> {
        match symbol {
            "BEGIN" => Ok(Trigger::Begin),
            "END" => Ok(Trigger::End),
            "ERROR" => Err("the ERROR probe is fired by generated code, not by a trigger".into()),
            other => Err(format!("unknown trigger `{other}`")),
        }
    }
}
