//! `uregs[R]`: a user register of the probed thread, in pid and USDT probes (whose context is
//! the user `struct pt_regs`). Register names are Oracle DTrace for Linux's (`R_RAX`, `R_PC`,
//! `R_X0`...); a number indexes pt_regs in 8-byte slots, which is the same numbering.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::probes::ArgSource;
use crate::syntax::ast::{Expr, ExprKind, Span};
use tracer_ebpf::insn::Size;

/// DTrace's register names and their slot in `struct pt_regs`.
#[cfg(target_arch = "x86_64")]
const REGS: &[(&str, u32)] = &[
    ("R_R15", 0),
    ("R_R14", 1),
    ("R_R13", 2),
    ("R_R12", 3),
    ("R_RBP", 4),
    ("R_FP", 4),
    ("R_RBX", 5),
    ("R_R1", 5),
    ("R_R11", 6),
    ("R_R10", 7),
    ("R_R9", 8),
    ("R_R8", 9),
    ("R_RAX", 10),
    ("R_R0", 10),
    ("R_RCX", 11),
    ("R_RDX", 12),
    ("R_RSI", 13),
    ("R_RDI", 14),
    ("R_ORIG_RAX", 15),
    ("R_RIP", 16),
    ("R_PC", 16),
    ("R_CS", 17),
    ("R_RFL", 18),
    ("R_PS", 18),
    ("R_RSP", 19),
    ("R_SP", 19),
    ("R_SS", 20),
    // The 32-bit names read the same registers, as in DTrace.
    ("R_EAX", 10),
    ("R_EBX", 5),
    ("R_ECX", 11),
    ("R_EDX", 12),
    ("R_ESI", 13),
    ("R_EDI", 14),
    ("R_EBP", 4),
    ("R_ESP", 19),
    ("R_EIP", 16),
    ("R_EFL", 18),
];
#[cfg(target_arch = "x86_64")]
const NREGS: u32 = 21;

#[cfg(target_arch = "aarch64")]
const REGS: &[(&str, u32)] = &[
    ("R_X0", 0),
    ("R_X1", 1),
    ("R_X2", 2),
    ("R_X3", 3),
    ("R_X4", 4),
    ("R_X5", 5),
    ("R_X6", 6),
    ("R_X7", 7),
    ("R_X8", 8),
    ("R_X9", 9),
    ("R_X10", 10),
    ("R_X11", 11),
    ("R_X12", 12),
    ("R_X13", 13),
    ("R_X14", 14),
    ("R_X15", 15),
    ("R_X16", 16),
    ("R_X17", 17),
    ("R_X18", 18),
    ("R_X19", 19),
    ("R_X20", 20),
    ("R_X21", 21),
    ("R_X22", 22),
    ("R_X23", 23),
    ("R_X24", 24),
    ("R_X25", 25),
    ("R_X26", 26),
    ("R_X27", 27),
    ("R_X28", 28),
    ("R_X29", 29),
    ("R_FP", 29),
    ("R_X30", 30),
    ("R_LR", 30),
    ("R_SP", 31),
    ("R_PC", 32),
    ("R_PSTATE", 33),
    ("R_PS", 33),
];
#[cfg(target_arch = "aarch64")]
const NREGS: u32 = 34;

impl Lower<'_, '_> {
    /// `uregs[index]`.
    pub(crate) fn uregs(&mut self, index: &[Expr], span: Span) -> Result<Val> {
        let [i] = index else {
            return Err(CompileError::new(span, "uregs[] takes one index"));
        };
        let slot = match &i.node {
            ExprKind::Ident(n) => REGS
                .iter()
                .find(|(r, _)| r == n)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    CompileError::new(
                        i.span,
                        format!(
                            "unknown register {n}; uregs[] takes DTrace's names, such as {}",
                            REGS[0].0
                        ),
                    )
                })?,
            ExprKind::Int { value, .. } if *value < NREGS as u64 => *value as u32,
            ExprKind::Int { value, .. } => {
                return Err(CompileError::new(
                    i.span,
                    format!("uregs[{value}]: there are {NREGS} registers"),
                ))
            }
            _ => {
                return Err(CompileError::new(
                    i.span,
                    "uregs[] needs a register name or a constant index",
                ))
            }
        };
        // The context is the probed thread's user registers only in uprobe programs.
        let user_regs = matches!(&self.probe.attach, tracer_common::Attach::Uprobe { .. })
            && matches!(
                self.probe.args,
                ArgSource::PtRegs { .. } | ArgSource::Usdt { .. } | ArgSource::Regs { .. }
            );
        if !user_regs {
            return Err(CompileError::new(
                span,
                format!(
                    "uregs[] is available in pid and USDT probes, not in {}",
                    self.probe.desc.full_name()
                ),
            ));
        }
        let v = self
            .f
            .load(tracer_ebpf::ir::Function::CTX, (slot * 8) as i16, Size::DW);
        Ok(Val::Int(v, crate::sema::signatures::UREGS.ty()))
    }
}
