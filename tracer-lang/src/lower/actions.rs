//! Data-recording actions and subroutines with effects: trace, printf, printa and the other
//! aggregation actions, exit, stacks, speculations, destructive actions.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::syntax::ast::{Expr, ExprKind, Span};
use crate::types::Type;
use tracer_common::record::{ActionDesc, ActionKind, Field, FieldType};
use tracer_common::script::Stat;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Operand, VReg};

impl<'g, 'a> Lower<'g, 'a> {
    /// Append one action with fields copied from values.
    pub(super) fn record_values(&mut self, kind: ActionKind, vals: &[(Val, Span)]) -> Result<()> {
        let mut fields = Vec::new();
        for (v, span) in vals {
            fields.push(self.record_value(v, *span)?);
        }
        self.actions.push(ActionDesc { kind, fields });
        self.records = true;
        Ok(())
    }

    pub fn record_value(&mut self, v: &Val, span: Span) -> Result<Field> {
        let strsize = self.g.opts.strsize;
        match v {
            Val::Str(p) => {
                let off = self.rec_field(strsize, span)?;
                let dst = self.scratch_ptr(self.rec_base + off);
                self.f.call(
                    helper::PROBE_READ_KERNEL_STR,
                    vec![dst.into(), Operand::Imm(strsize as i64), (*p).into()],
                );
                Ok(Field {
                    offset: off,
                    ty: FieldType::Str { size: strsize },
                })
            }
            Val::Int(r, Type::Sym { user }) => {
                // A symbol: the address, and for user space the pid that gives it meaning.
                let (ty, size) = if *user {
                    (FieldType::USym, 16)
                } else {
                    (FieldType::KSym, 8)
                };
                let off = self.rec_field(size, span)?;
                let dst = self.scratch_ptr(self.rec_base + off);
                if *user {
                    let pid = self.proc_pid();
                    self.f.store(dst, 0, pid, Size::DW);
                    self.f.store(dst, 8, *r, Size::DW);
                } else {
                    self.f.store(dst, 0, *r, Size::DW);
                }
                Ok(Field { offset: off, ty })
            }
            Val::Int(r, ty) => {
                let (size, signed) = match ty {
                    Type::Void => {
                        return Err(CompileError::new(
                            span,
                            "this expression has no value to record",
                        ))
                    }
                    t => t.int_parts(),
                };
                let off = self.rec_field(8, span)?;
                let dst = self.scratch_ptr(self.rec_base + off);
                self.f.store(dst, 0, *r, Size::DW);
                Ok(Field {
                    offset: off,
                    ty: FieldType::Int { size, signed },
                })
            }
        }
    }

    fn agg_index(&self, e: &Expr) -> Result<u32> {
        match &e.node {
            ExprKind::AggRef(name) => self
                .g
                .aggs
                .iter()
                .position(|a| &a.name == name)
                .map(|i| i as u32)
                .ok_or_else(|| {
                    CompileError::new(
                        e.span,
                        format!("@{name} is not an aggregation defined before this point"),
                    )
                }),
            _ => Err(CompileError::new(
                e.span,
                "expected an aggregation such as @a",
            )),
        }
    }

    pub(super) fn action(&mut self, name: &str, args: &[Expr], span: Span) -> Result<()> {
        // Sema checked the arity (`sema::signatures::ACTIONS`); a call that slipped past it
        // is an internal error, not an out-of-range index.
        let argc = |n: std::ops::RangeInclusive<usize>| -> Result<()> {
            if n.contains(&args.len()) {
                Ok(())
            } else {
                Err(CompileError::new(
                    span,
                    format!("internal: {name}( ) with {} arguments", args.len()),
                ))
            }
        };
        match name {
            "trace" => {
                argc(1..=1)?;
                let v = self.expr(&args[0])?;
                self.record_values(ActionKind::Trace, &[(v, args[0].span)])
            }
            "printf" | "system" => {
                argc(1..=usize::MAX)?;
                let fmt = match &args[0].node {
                    ExprKind::Str(s) => s.clone(),
                    _ => {
                        return Err(CompileError::new(
                            args[0].span,
                            format!("{name}( ) format must be a string literal"),
                        ))
                    }
                };
                if name == "system" && !self.g.opts.destructive {
                    return Err(CompileError::new(
                        span,
                        "system( ) is a destructive action: run with -w to allow it",
                    ));
                }
                let mut vals = Vec::new();
                for a in &args[1..] {
                    vals.push((self.expr(a)?, a.span));
                }
                let types: Vec<Type> = vals.iter().map(|(v, _)| v.ty()).collect();
                let fmt = crate::sema::formats::check(name, &fmt, &types)
                    .map_err(|m| CompileError::new(span, m))?;
                let kind = if name == "printf" {
                    ActionKind::Printf { format: fmt }
                } else {
                    ActionKind::System { format: fmt }
                };
                self.record_values(kind, &vals)
            }
            "printa" => {
                argc(1..=usize::MAX)?;
                let (format, rest) = match &args[0].node {
                    ExprKind::Str(s) => (Some(s.clone()), &args[1..]),
                    _ => (None, args),
                };
                argc(usize::from(format.is_some()) + 1..=usize::MAX)?;
                let aggs = rest
                    .iter()
                    .map(|a| self.agg_index(a))
                    .collect::<Result<Vec<_>>>()?;
                let format = match &format {
                    Some(fmt) => {
                        // The format consumes the first aggregation's keys, then `%@` its value.
                        let first = &self.g.aggs[aggs[0] as usize];
                        let keys: Vec<Type> =
                            first.keys.iter().map(|k| field_type(&k.ty)).collect();
                        let call = if first.func == tracer_common::AggFunc::Count {
                            "printa-count"
                        } else {
                            "printa"
                        };
                        let checked = crate::sema::formats::check(call, fmt, &keys)
                            .map_err(|m| CompileError::new(args[0].span, m))?;
                        Some(checked)
                    }
                    None => None,
                };
                self.actions.push(ActionDesc {
                    kind: ActionKind::Printa { format, aggs },
                    fields: vec![],
                });
                Ok(())
            }
            "clear" | "denormalize" => {
                argc(1..=1)?;
                let agg = self.agg_index(&args[0])?;
                let kind = if name == "clear" {
                    ActionKind::Clear { agg }
                } else {
                    ActionKind::Denormalize { agg }
                };
                self.actions.push(ActionDesc {
                    kind,
                    fields: vec![],
                });
                Ok(())
            }
            "trunc" | "normalize" => {
                if name == "trunc" {
                    argc(1..=2)?
                } else {
                    argc(2..=2)?
                };
                let agg = self.agg_index(&args[0])?;
                let mut vals = Vec::new();
                if let Some(a) = args.get(1) {
                    vals.push((self.expr(a)?, a.span));
                }
                let kind = if name == "trunc" {
                    ActionKind::Trunc { agg }
                } else {
                    ActionKind::Normalize { agg }
                };
                self.record_values(kind, &vals)
            }
            "exit" => {
                argc(1..=1)?;
                // Sema reports a string argument it can type; this is for those it leaves to
                // lowering (a macro argument).
                let v = self.expr(&args[0])?;
                if let Val::Str(_) = v {
                    let action = crate::sema::signatures::action(name);
                    let m = action.and_then(|a| a.class_error(0)).unwrap_or_default();
                    return Err(CompileError::new(args[0].span, m));
                }
                self.record_values(ActionKind::Exit, &[(v, args[0].span)])?;
                let flag = super::vars::EXIT_FLAG as i16;
                self.f.store(
                    self.globals,
                    flag,
                    Operand::Imm(super::vars::RUN_EXITING),
                    Size::DW,
                );
                Ok(())
            }
            "stack" | "ustack" | "jstack" => {
                let (user, depth) = self.stack_call(name, args, span)?;
                let field = self.record_stack(user, depth, span)?;
                let kind = if user {
                    ActionKind::UStack
                } else {
                    ActionKind::Stack
                };
                self.actions.push(ActionDesc {
                    kind,
                    fields: vec![field],
                });
                self.records = true;
                Ok(())
            }
            "speculate" => {
                argc(1..=1)?;
                if !self.actions.is_empty() {
                    return Err(CompileError::new(
                        span,
                        "speculate( ) must come before any data-recording action in its clause",
                    ));
                }
                let v = self.expr(&args[0])?;
                let r = self.int_of(&v, args[0].span)?;
                self.spec = Some(r);
                Ok(())
            }
            "commit" | "discard" => {
                argc(1..=1)?;
                let v = self.expr(&args[0])?;
                let id = self.int_of(&v, args[0].span)?;
                self.release_speculation(id);
                let kind = if name == "commit" {
                    ActionKind::Commit
                } else {
                    ActionKind::Discard
                };
                self.record_values(kind, &[(v, args[0].span)])
            }
            "raise" => {
                argc(1..=1)?;
                if !self.g.opts.destructive {
                    return Err(CompileError::new(
                        span,
                        "raise( ) is a destructive action: run with -w to allow it",
                    ));
                }
                let v = self.expr(&args[0])?;
                let sig = self.int_of(&v, args[0].span)?;
                self.f.call(helper::SEND_SIGNAL, vec![sig.into()]);
                Ok(())
            }
            "stop" => {
                argc(0..=0)?;
                if !self.g.opts.destructive {
                    return Err(CompileError::new(
                        span,
                        "stop( ) is a destructive action: run with -w to allow it",
                    ));
                }
                self.f.call(helper::SEND_SIGNAL, vec![Operand::Imm(19)]);
                Ok(())
            }
            "setopt" => Err(CompileError::new(
                span,
                "setopt( ) is not supported yet; use -x or #pragma D option",
            )),
            other => {
                if crate::sema::signatures::subroutine(other).is_some() {
                    self.call_value(other, args, span).map(|_| ())
                } else {
                    Err(CompileError::new(
                        span,
                        format!("{other}( ) is not a known action or subroutine"),
                    ))
                }
            }
        }
    }

    /// Mark speculation `id` free again (the runtime keeps the buffered data until it sees the
    /// commit or discard record).
    fn release_speculation(&mut self, id: VReg) {
        let bad = self.f.label();
        self.f.branch(JmpOp::Jeq, id, Operand::Imm(0), bad);
        self.f
            .branch(JmpOp::Jgt, id, Operand::Imm(self.g.opts.nspec as i64), bad);
        let off = self.temp(8);
        let key = self.scratch_ptr(off);
        self.f.store(key, 0, id, Size::W);
        let m = self.f.map_ptr(self.g.map(tracer_common::MapNames::SPECS));
        let p = self
            .f
            .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
        self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), bad);
        self.f.store(p, 0, Operand::Imm(0), Size::DW);
        self.f.push(Inst::Label(bad));
    }

    /// `speculation()`: claim a free slot 1..=nspec, or 0 when all are busy.
    pub fn speculation(&mut self) -> VReg {
        let out = self.f.imm(0);
        let done = self.f.label();
        let off = self.temp(8);
        let key = self.scratch_ptr(off);
        for i in 1..=self.g.opts.nspec {
            let next = self.f.label();
            self.f.store(key, 0, Operand::Imm(i as i64), Size::W);
            let m = self.f.map_ptr(self.g.map(tracer_common::MapNames::SPECS));
            let p = self
                .f
                .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
            self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), next);
            let state = self.f.load(p, 0, Size::DW);
            self.f.branch(JmpOp::Jne, state, Operand::Imm(0), next);
            self.f.store(p, 0, Operand::Imm(1), Size::DW);
            self.f.push(Inst::Mov {
                dst: out,
                src: Operand::Imm(i as i64),
            });
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(next));
        }
        self.bump_stat(Stat::SpecUnavail);
        self.f.push(Inst::Label(done));
        out
    }

    /// `stack()`/`ustack()` into the record: `[pid,] nframes, ips…` via bpf_get_stack.
    pub fn record_stack(&mut self, user: bool, depth: u32, span: Span) -> Result<Field> {
        let ty = if user {
            FieldType::UStack { depth }
        } else {
            FieldType::KStack { depth }
        };
        let off = self.rec_field(ty.size(), span)?;
        let base = self.scratch_ptr(self.rec_base + off);
        self.write_stack(base, user, depth);
        Ok(Field { offset: off, ty })
    }

    /// Write a stack in `FieldType::{K,U}Stack` layout at `base` (a record or a key).
    pub fn write_stack(&mut self, base: VReg, user: bool, depth: u32) {
        let mut ips_at = 8i64;
        if user {
            let pid = self.proc_pid();
            self.f.store(base, 0, pid, Size::DW);
            ips_at = 16;
        }
        let ips = self.f.alu(AluOp::Add, base, Operand::Imm(ips_at));
        let flags = if user { 1 << 8 } else { 0 };
        // A kernel stack takes one frame more than asked: see `FieldType::KStack`.
        let frames_wanted = if user { depth } else { depth + 1 };
        let n = self.f.call(
            helper::GET_STACK,
            vec![
                tracer_ebpf::ir::Function::CTX.into(),
                ips.into(),
                Operand::Imm(8 * frames_wanted as i64),
                Operand::Imm(flags),
            ],
        );
        // A negative return (no stack) records zero frames.
        let frames = self.f.alu(AluOp::Rsh, n, Operand::Imm(3));
        let ok = self.f.label();
        let out = self.f.mov(frames);
        self.f.branch(JmpOp::Jsge, n, Operand::Imm(0), ok);
        self.f.push(Inst::Mov {
            dst: out,
            src: Operand::Imm(0),
        });
        self.f.push(Inst::Label(ok));
        self.f.store(base, (ips_at - 8) as i16, out, Size::DW);
    }

    /// `stack([n])`/`ustack([n])` arguments: (user, depth).
    pub fn stack_call(&self, name: &str, args: &[Expr], span: Span) -> Result<(bool, u32)> {
        if args.len() > 2 {
            return Err(CompileError::new(
                span,
                format!("{name}( ) takes at most 2 arguments"),
            ));
        }
        // jstack( ) is ustack( ) (DTrace's runtime helpers are perf maps here, read by both).
        let user = name != "stack";
        let depth = match args.first() {
            Some(e) => match &e.node {
                ExprKind::Int { value, .. } => (*value as u32).clamp(1, 127),
                _ => {
                    return Err(CompileError::new(
                        e.span,
                        format!("{name}( ) frame count must be a constant"),
                    ))
                }
            },
            None => {
                if user {
                    self.g.opts.ustackframes.min(127)
                } else {
                    self.g.opts.stackframes.min(127)
                }
            }
        };
        Ok((user, depth))
    }
}

/// The D type a record or key field was made from (for format checks).
fn field_type(t: &FieldType) -> Type {
    match t {
        FieldType::Int { size, signed } => Type::Int {
            size: *size,
            signed: *signed,
        },
        FieldType::Str { .. } => Type::Str,
        FieldType::KStack { .. } => Type::Stack { user: false },
        FieldType::UStack { .. } => Type::Stack { user: true },
        FieldType::KSym => Type::Sym { user: false },
        FieldType::USym => Type::Sym { user: true },
        FieldType::Bytes { .. } => Type::Ptr(Box::new(Type::Void)),
    }
}
