//! A verifier rejection explained: the D line that produced the failing instruction and the
//! last lines of the kernel's log.

use crate::failure::Failure;
use tracer_lang::diag::SourceLine;
use tracer_runtime::prepare::Prepared;

/// Explain a verifier rejection with the D line that produced the failing instruction.
pub fn verifier_failure(prepared: &Prepared, program: &str, probe: &str, log: &str) -> Failure {
    let compiled = &prepared.compiled;
    let idx = compiled.functions.iter().position(|f| f.name == program);
    // The last "N: (op) ..." line of the log is where verification stopped.
    let insn = log.lines().rev().find_map(|l| {
        let (n, rest) = l.split_once(':')?;
        if rest.trim_start().starts_with('(') {
            n.trim().parse::<usize>().ok()
        } else {
            None
        }
    });
    let line = match (idx, insn) {
        (Some(i), Some(n)) => compiled.emitted[i].line_of(n),
        _ => None,
    };
    let mut m =
        format!("failed to enable {probe}: the kernel verifier rejected the generated program");
    if let Some(packed) = line {
        let SourceLine { file, line: l } = SourceLine::unpack(packed);
        let name = prepared.compiler.sources.name(file);
        m.push_str(&format!(" for {name}:{l}"));
        if let Some(t) = prepared
            .compiler
            .sources
            .text(file)
            .lines()
            .nth(l.saturating_sub(1) as usize)
        {
            m.push_str(&format!(":\n    {}", t.trim()));
        }
    }
    m.push_str("\nverifier log (last lines):");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    for l in &lines[lines.len().saturating_sub(12)..] {
        m.push_str("\n    ");
        m.push_str(l);
    }
    Failure::new(m)
}
