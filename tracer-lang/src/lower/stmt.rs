//! Statements: assignments to every kind of variable, and the data-recording actions.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::syntax::ast::{BinOp, Expr, ExprKind, Span, Stmt};
use crate::types::Type;
use tracer_common::record::{ActionDesc, ActionKind, Field, FieldType};
use tracer_common::script::Stat;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, MapId, Operand, VReg};

/// Where a variable's bytes live.
enum Place {
    /// Fixed offset in the globals value or the scratch (`this->`).
    Fixed { base: VReg, offset: u32, ty: Type },
    /// A hash map entry with the key built at `key`.
    Dynamic { map: MapId, key: VReg, ty: Type },
}

impl<'g, 'a> Lower<'g, 'a> {
    pub fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match s {
            Stmt::Expr(e) => {
                self.line(e.span);
                match &e.node {
                    ExprKind::Call { func, args }
                        if super::builtins::call_type(&func.node).is_none()
                            || matches!(func.node.as_str(), "stack" | "ustack") =>
                    {
                        self.action(&func.node, args, e.span)
                    }
                    ExprKind::Aggregate { .. } => self.aggregate(e),
                    _ => self.expr(e).map(|_| ()),
                }
            }
            Stmt::If {
                cond, then, els, ..
            } => {
                self.line(cond.span);
                let c = self.expr(cond)?;
                let c = self.truth(&c, cond.span)?;
                let else_l = self.f.label();
                let done = self.f.label();
                self.f.branch(JmpOp::Jeq, c, Operand::Imm(0), else_l);
                let before = self.actions.len();
                for s in then {
                    self.stmt(s)?;
                }
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(else_l));
                for s in els {
                    self.stmt(s)?;
                }
                self.f.push(Inst::Label(done));
                if self.actions.len() != before {
                    return Err(CompileError::new(
                        cond.span,
                        "data-recording actions inside if/else are not supported yet; use a predicate",
                    ));
                }
                Ok(())
            }
            Stmt::Decl(_) | Stmt::Empty => Ok(()),
        }
    }

    /// Build the tuple key of a dynamic variable in scratch.
    fn build_key(
        &mut self,
        prefix_tid: bool,
        keys: &[Expr],
        types: &[Type],
        key_size: u32,
        span: Span,
    ) -> Result<VReg> {
        if keys.len() != types.len() {
            return Err(CompileError::new(
                span,
                format!("expected {} key(s), found {}", types.len(), keys.len()),
            ));
        }
        let mut vals = Vec::new();
        for k in keys {
            vals.push((self.expr(k)?, k.span));
        }
        let off = self.temp(key_size);
        let key = self.scratch_ptr(off);
        self.f.push(Inst::MemZero {
            dst: key,
            len: key_size.div_ceil(8) * 8,
        });
        let mut at = 0u32;
        if prefix_tid {
            let t = self.f.call(helper::GET_CURRENT_PID_TGID, vec![]);
            let tid = self.f.alu(AluOp::And, t, Operand::Imm(0xffff_ffff));
            self.f.store(key, 0, tid, Size::DW);
            at = 8;
        }
        for ((v, sp), ty) in vals.iter().zip(types) {
            match (v, ty) {
                (Val::Str(p), Type::Str) => {
                    let dst = self.f.alu(AluOp::Add, key, Operand::Imm(at as i64));
                    self.f.call(
                        helper::PROBE_READ_KERNEL_STR,
                        vec![
                            dst.into(),
                            Operand::Imm(self.g.opts.strsize as i64),
                            (*p).into(),
                        ],
                    );
                    at += self.g.opts.strsize.div_ceil(8) * 8;
                }
                (Val::Int(r, _), t) if t.is_int() => {
                    self.f.store(key, at as i16, *r, Size::DW);
                    at += 8;
                }
                _ => {
                    return Err(CompileError::new(
                        *sp,
                        format!("key has the wrong type: expected {ty}"),
                    ))
                }
            }
        }
        Ok(key)
    }

    fn place(&mut self, e: &Expr) -> Result<Place> {
        let span = e.span;
        match &e.node {
            ExprKind::Ident(n) => {
                let s = self.g.vars.globals.get(n).cloned().ok_or_else(|| {
                    if super::builtins::is_builtin(n).is_some() {
                        CompileError::new(
                            span,
                            format!("{n} is a built-in variable and cannot be assigned"),
                        )
                    } else {
                        CompileError::new(
                            span,
                            format!("failed to resolve {n}: Unknown variable name"),
                        )
                    }
                })?;
                Ok(Place::Fixed {
                    base: self.globals,
                    offset: s.offset,
                    ty: s.ty,
                })
            }
            ExprKind::ThisVar(n) => {
                let s = self.g.vars.this.get(n).cloned().ok_or_else(|| {
                    CompileError::new(span, format!("this->{n} is used before it is assigned"))
                })?;
                Ok(Place::Fixed {
                    base: self.scratch,
                    offset: s.offset,
                    ty: s.ty,
                })
            }
            ExprKind::SelfVar(n) => {
                let d = self.g.vars.thread.get(n).cloned().ok_or_else(|| {
                    CompileError::new(span, format!("self->{n} is never assigned"))
                })?;
                let key = self.build_key(true, &[], &d.keys[..0], d.key_size, span)?;
                if !d.keys.is_empty() {
                    return Err(CompileError::new(
                        span,
                        format!("self->{n} is an array; index it"),
                    ));
                }
                Ok(Place::Dynamic {
                    map: d.map.unwrap(),
                    key,
                    ty: d.value,
                })
            }
            ExprKind::Index { base, index } => match &base.node {
                ExprKind::Ident(n) => {
                    let d = self.g.vars.assocs.get(n).cloned().ok_or_else(|| {
                        CompileError::new(
                            base.span,
                            format!("failed to resolve {n}: Unknown variable name"),
                        )
                    })?;
                    let key = self.build_key(false, index, &d.keys, d.key_size, span)?;
                    Ok(Place::Dynamic {
                        map: d.map.unwrap(),
                        key,
                        ty: d.value,
                    })
                }
                ExprKind::SelfVar(n) => {
                    let d = self.g.vars.thread.get(n).cloned().ok_or_else(|| {
                        CompileError::new(base.span, format!("self->{n} is never assigned"))
                    })?;
                    let key = self.build_key(true, index, &d.keys, d.key_size, span)?;
                    Ok(Place::Dynamic {
                        map: d.map.unwrap(),
                        key,
                        ty: d.value,
                    })
                }
                _ => Err(CompileError::new(
                    span,
                    "only associative arrays can be indexed here",
                )),
            },
            _ => Err(CompileError::new(
                span,
                "the left side of an assignment must be a variable",
            )),
        }
    }

    pub fn load_var(&mut self, e: &Expr) -> Result<Val> {
        match self.place(e)? {
            Place::Fixed { base, offset, ty } => Ok(self.load_at(base, offset, ty)),
            Place::Dynamic { map, key, ty } => {
                // A missing entry reads as 0 or "".
                let m = self.f.map_ptr(map);
                let p = self
                    .f
                    .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
                let out = self.f.vreg();
                let found = self.f.label();
                let done = self.f.label();
                self.f.branch(JmpOp::Jne, p, Operand::Imm(0), found);
                if ty == Type::Str {
                    let off = self.temp(8);
                    let empty = self.scratch_ptr(off);
                    self.f.store(empty, 0, Operand::Imm(0), Size::DW);
                    self.f.push(Inst::Mov {
                        dst: out,
                        src: empty.into(),
                    });
                } else {
                    self.f.push(Inst::Mov {
                        dst: out,
                        src: Operand::Imm(0),
                    });
                }
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(found));
                if ty == Type::Str {
                    self.f.push(Inst::Mov {
                        dst: out,
                        src: p.into(),
                    });
                } else {
                    let (size, signed) = ty.int_parts();
                    let v = self
                        .f
                        .load(p, 0, Size::from_bytes(size as u32).unwrap_or(Size::DW));
                    let v = self.normalize(v, size, signed);
                    self.f.push(Inst::Mov {
                        dst: out,
                        src: v.into(),
                    });
                }
                self.f.push(Inst::Label(done));
                Ok(if ty == Type::Str {
                    Val::Str(out)
                } else {
                    Val::Int(out, ty)
                })
            }
        }
    }

    fn load_at(&mut self, base: VReg, offset: u32, ty: Type) -> Val {
        let p = self.f.alu(AluOp::Add, base, Operand::Imm(offset as i64));
        if ty == Type::Str {
            return Val::Str(p);
        }
        let (size, signed) = ty.int_parts();
        let v = self
            .f
            .load(p, 0, Size::from_bytes(size as u32).unwrap_or(Size::DW));
        let v = self.normalize(v, size, signed);
        Val::Int(v, ty)
    }

    pub fn store_var(&mut self, lhs: &Expr, v: Val) -> Result<()> {
        let strsize = self.g.opts.strsize;
        match self.place(lhs)? {
            Place::Fixed { base, offset, ty } => {
                let p = self.f.alu(AluOp::Add, base, Operand::Imm(offset as i64));
                self.write_value(p, &ty, &v, lhs.span, strsize)
            }
            Place::Dynamic { map, key, ty } => {
                // Storing 0 (or "") deletes the entry, as DTrace frees dynamic variables.
                let is_zero = match &v {
                    Val::Int(r, _) => self.compare(JmpOp::Jeq, *r, Operand::Imm(0)),
                    Val::Str(p) => {
                        let b = self.f.load(*p, 0, Size::B);
                        self.compare(JmpOp::Jeq, b, Operand::Imm(0))
                    }
                };
                let del = self.f.label();
                let done = self.f.label();
                self.f.branch(JmpOp::Jne, is_zero, Operand::Imm(0), del);
                if ty == Type::Str && matches!(v, Val::Int(..)) {
                    // `self->s = 0` frees a string variable; any other integer is an error.
                    self.f.push(Inst::Jump(del));
                    self.f.push(Inst::Label(del));
                    let m = self.f.map_ptr(map);
                    self.f
                        .call(helper::MAP_DELETE_ELEM, vec![m.into(), key.into()]);
                    self.f.push(Inst::Label(done));
                    return Ok(());
                }
                let vs = ty.storage_size(strsize).div_ceil(8) * 8;
                let off = self.temp(vs.max(8));
                let buf = self.scratch_ptr(off);
                if ty == Type::Str {
                    self.f.push(Inst::MemZero { dst: buf, len: vs });
                }
                self.write_value(buf, &ty, &v, lhs.span, strsize)?;
                let m = self.f.map_ptr(map);
                let r = self.f.call(
                    helper::MAP_UPDATE_ELEM,
                    vec![m.into(), key.into(), buf.into(), Operand::Imm(0)],
                );
                self.f.branch(JmpOp::Jeq, r, Operand::Imm(0), done);
                self.bump_stat(Stat::DynDrops);
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(del));
                let m = self.f.map_ptr(map);
                self.f
                    .call(helper::MAP_DELETE_ELEM, vec![m.into(), key.into()]);
                self.f.push(Inst::Label(done));
                Ok(())
            }
        }
    }

    /// Write `v` (converted to `ty`) at `p`.
    fn write_value(&mut self, p: VReg, ty: &Type, v: &Val, span: Span, strsize: u32) -> Result<()> {
        match (ty, v) {
            (Type::Str, Val::Str(s)) => {
                self.f.call(
                    helper::PROBE_READ_KERNEL_STR,
                    vec![p.into(), Operand::Imm(strsize as i64), (*s).into()],
                );
                Ok(())
            }
            (t, Val::Int(r, _)) if t.is_int() => {
                let (size, _) = t.int_parts();
                self.f
                    .store(p, 0, *r, Size::from_bytes(size as u32).unwrap_or(Size::DW));
                Ok(())
            }
            (t, v) => Err(CompileError::new(
                span,
                format!("cannot assign a {} to a variable of type {t}", v.ty()),
            )),
        }
    }

    pub fn assign(&mut self, op: Option<BinOp>, lhs: &Expr, rhs: &Expr, span: Span) -> Result<Val> {
        let v = match op {
            None => self.expr(rhs)?,
            Some(op) => {
                let combined = Box::new(crate::syntax::ast::Spanned {
                    node: ExprKind::Binary {
                        op,
                        lhs: lhs.clone(),
                        rhs: rhs.clone(),
                    },
                    span,
                });
                self.expr(&combined)?
            }
        };
        // Convert to the variable's type.
        let target = self.static_type_of(lhs);
        let v = match (v, &target) {
            (Val::Int(r, _), t) if t.is_int() => {
                let (size, signed) = t.int_parts();
                Val::Int(self.normalize(r, size, signed), t.clone())
            }
            (v, _) => v,
        };
        self.store_var(lhs, v.clone())?;
        Ok(v)
    }

    /// Append one action with fields copied from values.
    fn record_values(&mut self, kind: ActionKind, vals: &[(Val, Span)]) -> Result<()> {
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

    fn action(&mut self, name: &str, args: &[Expr], span: Span) -> Result<()> {
        let argc = |n: std::ops::RangeInclusive<usize>| -> Result<()> {
            if n.contains(&args.len()) {
                Ok(())
            } else {
                Err(CompileError::new(
                    span,
                    format!(
                        "{name}( ) prototype mismatch: {} arguments passed, {} expected",
                        args.len(),
                        if n.start() == n.end() {
                            n.start().to_string()
                        } else {
                            format!("{} to {}", n.start(), n.end())
                        }
                    ),
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
                if args.is_empty() {
                    return Err(CompileError::new(
                        span,
                        format!("{name}( ) requires a format string"),
                    ));
                }
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
                (self.g.input.check_format)(name, &fmt, &types)
                    .map_err(|m| CompileError::new(span, m))?;
                let kind = if name == "printf" {
                    ActionKind::Printf { format: fmt }
                } else {
                    ActionKind::System { format: fmt }
                };
                self.record_values(kind, &vals)
            }
            "printa" => {
                if args.is_empty() {
                    return Err(CompileError::new(span, "printa( ) requires an aggregation"));
                }
                let (format, rest) = match &args[0].node {
                    ExprKind::Str(s) => (Some(s.clone()), &args[1..]),
                    _ => (None, args),
                };
                if rest.is_empty() {
                    return Err(CompileError::new(
                        span,
                        "printa( ) requires an aggregation after the format",
                    ));
                }
                let aggs = rest
                    .iter()
                    .map(|a| self.agg_index(a))
                    .collect::<Result<Vec<_>>>()?;
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
                let v = self.expr(&args[0])?;
                self.record_values(ActionKind::Exit, &[(v, args[0].span)])?;
                let flag = super::vars::EXIT_FLAG as i16;
                self.f.store(self.globals, flag, Operand::Imm(1), Size::DW);
                Ok(())
            }
            "stack" | "ustack" => {
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
                if super::builtins::call_type(other).is_some() {
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
            let t = self.f.call(helper::GET_CURRENT_PID_TGID, vec![]);
            let pid = self.f.alu(AluOp::Rsh, t, Operand::Imm(32));
            self.f.store(base, 0, pid, Size::DW);
            ips_at = 16;
        }
        let ips = self.f.alu(AluOp::Add, base, Operand::Imm(ips_at));
        let flags = if user { 1 << 8 } else { 0 };
        let n = self.f.call(
            helper::GET_STACK,
            vec![
                tracer_ebpf::ir::Function::CTX.into(),
                ips.into(),
                Operand::Imm(8 * depth as i64),
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
        let user = name == "ustack";
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
