//! Stable providers (proc, sched, io): their arguments, DTrace's structure members, the
//! thread a probe runs "in", and the guard, each a D expression the provider wrote over the
//! underlying tracepoint's arguments (see `ArgSource::Stable`). Lowering such an expression
//! swaps the probe's argument source for the tracepoint's while it runs, so `args->field`
//! and `args[i]` inside it mean the tracepoint's own.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::probes::{ArgSource, StableArgs};
use crate::syntax::ast::Span;
use tracer_ebpf::ir::{Label, VReg};

impl Lower<'_, '_> {
    fn stable(&self) -> Option<StableArgs> {
        match &self.probe.args {
            ArgSource::Stable(s) => Some((**s).clone()),
            _ => None,
        }
    }

    /// Lower the provider's expression `src` against the tracepoint's arguments. Errors are
    /// reported at `span`, the script's use of the argument.
    fn stable_expr(&mut self, s: &StableArgs, src: &str, span: Span) -> Result<Val> {
        let e = crate::syntax::parse_expr(0, src).map_err(|d| {
            CompileError::new(
                span,
                format!("internal: stable argument `{src}`: {}", d.message),
            )
        })?;
        crate::sema::check::expr(&e).map_err(|d| {
            CompileError::new(
                span,
                format!("internal: stable argument `{src}`: {}", d.message),
            )
        })?;
        let saved = std::mem::replace(&mut self.probe.args, s.base.clone());
        self.provider_exprs += 1;
        let r = self.expr(&e);
        self.provider_exprs -= 1;
        self.probe.args = saved;
        r.map_err(|e| {
            CompileError::new(
                span,
                format!("{}: {}", self.probe.desc.full_name(), e.message),
            )
        })
    }

    /// `args[i]` of a stable probe; None for other probes.
    pub(crate) fn stable_index(&mut self, i: u32, span: Span) -> Option<Result<Val>> {
        let s = self.stable()?;
        Some(match s.args.get(i as usize) {
            Some(a) => self.stable_expr(&s, &a.expr, span),
            None => Err(CompileError::new(
                span,
                format!(
                    "index {i} is out of range for {} args[ ]",
                    self.probe.desc.full_name()
                ),
            )),
        })
    }

    /// `args->name` of a stable probe; None for other probes.
    pub(crate) fn stable_named(&mut self, name: &str, span: Span) -> Option<Result<Val>> {
        let s = self.stable()?;
        Some(match s.args.iter().find(|a| a.name == name) {
            Some(a) => self.stable_expr(&s, &a.expr, span),
            None => {
                let names: Vec<&str> = s.args.iter().map(|a| a.name.as_str()).collect();
                Err(CompileError::new(
                    span,
                    format!(
                        "{} has no argument named {name}; it has: {}",
                        self.probe.desc.full_name(),
                        names.join(", ")
                    ),
                ))
            }
        })
    }

    /// `args[i]->member` where the provider translates DTrace's structure member (e.g.
    /// `args[0]->pr_pid`); None when it does not, and the member is read from the real type.
    pub(crate) fn stable_member(
        &mut self,
        i: u32,
        member: &str,
        span: Span,
    ) -> Option<Result<Val>> {
        let s = self.stable()?;
        let (_, _, src) = s.members.iter().find(|(n, m, _)| *n == i && m == member)?;
        Some(self.stable_expr(&s, src, span))
    }

    /// A builtin (`pid`, `execname`...) the provider computes for another thread.
    pub(crate) fn stable_thread(
        &mut self,
        name: &str,
        ty: &crate::types::Type,
        span: Span,
    ) -> Option<Result<Val>> {
        let s = self.stable()?;
        let (_, src) = s.thread.iter().find(|(n, _)| n == name)?;
        Some(self.stable_expr(&s, src, span).map(|v| match v {
            Val::Int(r, _) if *ty != crate::types::Type::Void => {
                let r = self.norm_to(r, ty);
                Val::Int(r, ty.clone())
            }
            v => v,
        }))
    }

    /// True when the probe computes builtin `name` for another thread than the current one.
    pub(crate) fn stable_thread_names(&self, name: &str) -> bool {
        matches!(&self.probe.args, ArgSource::Stable(s) if s.thread.iter().any(|(n, _)| n == name))
    }

    /// `argN` of a stable probe as a register (0 when the argument cannot be read).
    pub(crate) fn stable_arg_reg(&mut self, i: u32) -> Option<VReg> {
        let v = self.stable_index(i, Span::default())?;
        Some(match v {
            Ok(Val::Int(r, _)) | Ok(Val::Str(r)) => r,
            Err(_) => self.f.imm(0),
        })
    }

    /// The provider's guard, before any clause: the probe does nothing when it is false. A
    /// fault inside it is counted as an error drop and skips the probe.
    pub(crate) fn stable_guard(&mut self, out: Label) -> Result<()> {
        let Some(s) = self.stable() else {
            return Ok(());
        };
        let Some(src) = s.guard.clone() else {
            return Ok(());
        };
        let (in_error, end) = (self.in_error, self.clause_end);
        self.in_error = true;
        self.clause_end = out;
        self.temp_top = self.temp_base;
        let v = self.stable_expr(&s, &src, Span::default());
        let r = v.and_then(|v| self.int_of(&v, Span::default()));
        if let Ok(r) = r {
            self.f.branch(
                tracer_ebpf::insn::JmpOp::Jeq,
                r,
                tracer_ebpf::ir::Operand::Imm(0),
                out,
            );
        }
        self.in_error = in_error;
        self.clause_end = end;
        r.map(|_| ())
    }
}
