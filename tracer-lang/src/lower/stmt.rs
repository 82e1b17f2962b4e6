//! Statements and variable access: assignments, loads and stores for every kind of variable.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::syntax::ast::{BinOp, Expr, ExprKind, Span, Stmt};
use crate::types::Type;
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
                crate::sema::check::typed(&self.typer(), e)?;
                match &e.node {
                    ExprKind::Call { func, args }
                        if crate::sema::signatures::subroutine(&func.node).is_none()
                            || matches!(func.node.as_str(), "stack" | "ustack" | "jstack") =>
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
                crate::sema::check::typed(&self.typer(), cond)?;
                let else_l = self.f.label();
                let done = self.f.label();
                self.cond_branch(cond, false, else_l)?;
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
            // A stable probe may run "in" another thread (sched:::on-cpu: the incoming one).
            let tid = match self.stable_thread("tid", &crate::types::Type::LONG, Span::default()) {
                Some(v) => {
                    let v = v?;
                    self.int_of(&v, Span::default())?
                }
                None => {
                    let t = self.f.call(helper::GET_CURRENT_PID_TGID, vec![]);
                    self.f.alu(AluOp::And, t, Operand::Imm(0xffff_ffff))
                }
            };
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
                    if crate::sema::signatures::variable(n).is_some() {
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
        let target = self.ty_of(lhs);
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
}
