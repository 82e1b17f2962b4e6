//! Expressions. Integers live in registers, normalised to their D type (sign- or
//! zero-extended to 64 bits); strings are pointers to NUL-terminated buffers of `strsize`
//! bytes in scratch, the globals value or a map value.
//!
//! Every value's type is sema's ([`Lower::ty_of`]: the clause's side table, filled by
//! `sema::typeck` for the probe being lowered); lowering does not work types out itself. A
//! debug build checks that each value it builds has the type sema gave its expression (an
//! internal compile error otherwise).

use super::{CompileError, Lower, Result};
use crate::sema::literals::parse_int;
use crate::sema::resolve::resolve_type;
use crate::sema::signatures;
use crate::sema::typeck::{ExprTypes, Typer};
use crate::syntax::ast::{self, BinOp, Expr, ExprKind, Span, UnOp};
use crate::types::Type;
use tracer_common::record::Fault;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Label, Operand, VReg};

#[derive(Debug, Clone)]
pub enum Val {
    Int(VReg, Type),
    Str(VReg),
}

impl Val {
    pub fn ty(&self) -> Type {
        match self {
            Val::Int(_, t) => t.clone(),
            Val::Str(_) => Type::Str,
        }
    }
}

impl<'g, 'a> Lower<'g, 'a> {
    /// Sign- or zero-extend the low `size` bytes of `v`.
    pub fn normalize(&mut self, v: VReg, size: u8, signed: bool) -> VReg {
        if size >= 8 {
            return v;
        }
        let shift = 64 - 8 * size as i64;
        let t = self.f.alu(AluOp::Lsh, v, Operand::Imm(shift));
        self.f.alu(
            if signed { AluOp::Arsh } else { AluOp::Rsh },
            t,
            Operand::Imm(shift),
        )
    }

    pub(crate) fn norm_to(&mut self, v: VReg, ty: &Type) -> VReg {
        let (size, signed) = ty.int_parts();
        self.normalize(v, size, signed)
    }

    pub fn int_of(&mut self, v: &Val, span: Span) -> Result<VReg> {
        match v {
            Val::Int(r, _) => Ok(*r),
            Val::Str(_) => Err(CompileError::new(
                span,
                "operand must be an integer, not a string",
            )),
        }
    }

    /// 0 or 1 for a predicate or a logical operand.
    pub fn truth(&mut self, v: &Val, span: Span) -> Result<VReg> {
        match v {
            Val::Int(r, _) => Ok(*r),
            Val::Str(_) => Err(CompileError::new(
                span,
                "a predicate must be a scalar, not a string (compare it with == or use strlen())",
            )),
        }
    }

    /// Copy a string literal into a scratch buffer.
    pub fn string_literal(&mut self, s: &str) -> Val {
        let bytes = s.as_bytes();
        let len = (bytes.len() + 1).min(self.g.opts.strsize as usize);
        // The buffer is a full string so that loops over it verify; only the text is written.
        let off = self.temp(self.g.opts.strsize);
        let buf = self.scratch_ptr(off);
        let mut padded = bytes[..len - 1].to_vec();
        padded.resize(len.div_ceil(8) * 8, 0);
        for (i, chunk) in padded.chunks(8).enumerate() {
            let word = u64::from_le_bytes(chunk.try_into().unwrap());
            self.f
                .store(buf, (i * 8) as i16, Operand::Imm(word as i64), Size::DW);
        }
        Val::Str(buf)
    }

    /// Record a fault for the runtime and abandon the clause.
    pub fn fault(&mut self, fault: Fault, addr: Operand) {
        use tracer_common::record::{FaultPayload, FAULT_EPID, FAULT_PAYLOAD_SIZE, HEADER_SIZE};
        use tracer_common::RecordHeader;
        if self.in_error {
            // A fault inside an ERROR clause is counted, never recursed into.
            self.bump_stat(tracer_common::script::Stat::ErrorDrops);
            self.f.push(Inst::Jump(self.clause_end));
            return;
        }
        let at = |offset: u32| offset as i16;
        let rec = self.scratch_ptr(self.fault_area);
        let epid = Operand::Imm(FAULT_EPID as i64);
        self.f.store(rec, at(RecordHeader::EPID), epid, Size::W);
        let cpu = self.f.call(helper::GET_SMP_PROCESSOR_ID, vec![]);
        self.f.store(rec, at(RecordHeader::CPU), cpu, Size::W);
        // `spec` and `site` are 0, in one store.
        self.f
            .store(rec, at(RecordHeader::SPEC), Operand::Imm(0), Size::DW);
        let clause = Operand::Imm(self.epid as i64);
        self.f.store(rec, at(FaultPayload::EPID), clause, Size::W);
        let code = Operand::Imm(fault as i64);
        self.f.store(rec, at(FaultPayload::CODE), code, Size::W);
        self.f.store(rec, at(FaultPayload::ADDR), addr, Size::DW);
        let action = Operand::Imm(self.actions.len() as i64 + 1);
        self.f
            .store(rec, at(FaultPayload::ACTION), action, Size::DW);
        let m = self.f.map_ptr(self.g.map(tracer_common::MapNames::EVENTS));
        self.f.call(
            helper::RINGBUF_OUTPUT,
            vec![
                m.into(),
                rec.into(),
                Operand::Imm((HEADER_SIZE + FAULT_PAYLOAD_SIZE) as i64),
                Operand::Imm(0),
            ],
        );
        let target = if self.g.error.is_some() {
            *self.fault_label.get_or_insert_with(|| self.f.label())
        } else {
            self.clause_end
        };
        self.f.push(Inst::Jump(target));
    }

    /// The type sema gives `e` for this probe.
    pub fn ty_of(&self, e: &Expr) -> Type {
        if self.provider_exprs == 0 {
            if let Some(t) = self.types.get(e) {
                return t.clone();
            }
        }
        self.typer().ty(e)
    }

    /// Sema's types of every expression of `clause` (and of the inlines it may expand).
    pub(crate) fn clause_types(&self, clause: &ast::Clause) -> ExprTypes {
        let typer = self.typer();
        let mut out = ExprTypes::default();
        for (value, _) in self.g.types.inlines.values() {
            typer.record(value, &mut out);
        }
        if let Some(p) = &clause.predicate {
            typer.record(p, &mut out);
        }
        fn stmts(typer: &Typer, body: &[ast::Stmt], out: &mut ExprTypes) {
            for s in body {
                match s {
                    ast::Stmt::Expr(e) => {
                        typer.record(e, out);
                    }
                    ast::Stmt::If {
                        cond, then, els, ..
                    } => {
                        typer.record(cond, out);
                        stmts(typer, then, out);
                        stmts(typer, els, out);
                    }
                    ast::Stmt::Decl(_) | ast::Stmt::Empty => {}
                }
            }
        }
        stmts(&typer, &clause.body, &mut out);
        out
    }

    pub fn expr(&mut self, e: &Expr) -> Result<Val> {
        let v = self.expr_untyped(e)?;
        if cfg!(debug_assertions) {
            let (got, sema) = (v.ty(), self.ty_of(e));
            if got != sema {
                return Err(CompileError::new(
                    e.span,
                    format!("internal: sema typed this as {sema}, lowering made a {got}"),
                ));
            }
        }
        Ok(v)
    }

    /// A value read from memory (a kernel member or element, a tracepoint field), typed by
    /// sema: its layout (`read`) says how many bytes were read, sema says what type the value
    /// has. In debug builds a disagreement is an internal error.
    fn sema_typed(&self, e: &Expr, read: Val) -> Result<Val> {
        let Val::Int(r, layout) = read else {
            return Ok(read);
        };
        let ty = self.ty_of(e);
        if cfg!(debug_assertions) && ty != layout {
            return Err(CompileError::new(
                e.span,
                format!("internal: sema typed this as {ty}, memory holds a {layout}"),
            ));
        }
        Ok(Val::Int(r, ty))
    }

    fn expr_untyped(&mut self, e: &Expr) -> Result<Val> {
        let span = e.span;
        match &e.node {
            ExprKind::Int { value, .. } => Ok(Val::Int(self.f.imm(*value as i64), self.ty_of(e))),
            ExprKind::Char(c) => Ok(Val::Int(self.f.imm(*c as i8 as i64), self.ty_of(e))),
            ExprKind::Str(s) => Ok(self.string_literal(s)),
            ExprKind::Macro(name) => {
                let text = self.macro_value(name).map_err(|m| CompileError::new(span, m))?;
                match parse_int(&text) {
                    Some(v) => Ok(Val::Int(self.f.imm(v), self.ty_of(e))),
                    None => Err(CompileError::new(
                        span,
                        format!("macro argument ${name} is \"{text}\", not a number; use $${name} for a string"),
                    )),
                }
            }
            ExprKind::MacroStr(name) => {
                let text = self.macro_value(name).map_err(|m| CompileError::new(span, m))?;
                Ok(self.string_literal(&text))
            }
            ExprKind::Ident(name) => self.ident(name, span),
            ExprKind::SelfVar(_) | ExprKind::ThisVar(_) => self.load_var(e),
            ExprKind::Index { base, index } => {
                if let ExprKind::Ident(n) = &base.node {
                    if n == "args" {
                        return self.args_index(index, span).and_then(|v| self.sema_typed(e, v));
                    }
                    if n == "uregs" {
                        return self.uregs(index, span);
                    }
                }
                if self.indexes_memory(base) {
                    let [i] = index.as_slice() else {
                        return Err(CompileError::new(span, "a pointer or array takes one index"));
                    };
                    return self.index_memory(base, i, span).and_then(|v| self.sema_typed(e, v));
                }
                self.load_var(e)
            }
            ExprKind::Call { func, args } => self.call_value(&func.node, args, span),
            ExprKind::Unary { op, expr } => self.unary(*op, expr, e),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e),
            ExprKind::Cond { cond, then, els } => {
                let c = self.expr(cond)?;
                let c = self.truth(&c, cond.span)?;
                let else_l = self.f.label();
                let done = self.f.label();
                let out = self.f.vreg();
                self.f.branch(JmpOp::Jeq, c, Operand::Imm(0), else_l);
                let a = self.expr(then)?;
                self.f.push(Inst::Mov { dst: out, src: self.val_reg(&a).into() });
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(else_l));
                let b = self.expr(els)?;
                if matches!(a, Val::Str(_)) != matches!(b, Val::Str(_)) {
                    return Err(CompileError::new(span, "both branches of ?: must be strings or both integers"));
                }
                let ty = self.ty_of(e);
                self.f.push(Inst::Mov { dst: out, src: self.val_reg(&b).into() });
                self.f.push(Inst::Label(done));
                Ok(if ty == Type::Str { Val::Str(out) } else { Val::Int(out, ty) })
            }
            ExprKind::Assign { op, lhs, rhs } => self.assign(*op, lhs, rhs, span),
            ExprKind::IncDec { expr, inc, prefix } => {
                let old = self.expr(expr)?;
                let ty = self.ty_of(e);
                let r = self.int_of(&old, expr.span)?;
                let new = self.f.alu(if *inc { AluOp::Add } else { AluOp::Sub }, r, Operand::Imm(1));
                let new = self.norm_to(new, &ty);
                self.store_var(expr, Val::Int(new, ty.clone()))?;
                Ok(Val::Int(if *prefix { new } else { r }, ty))
            }
            ExprKind::Cast { ty, expr } => {
                // Resolved again for its error: sema types a bad name as long long.
                resolve_type(self.g.input.kernel_types, ty)?;
                let t = self.ty_of(e);
                let v = self.expr(expr)?;
                match (&v, &t) {
                    (_, Type::Struct { .. } | Type::Array { .. }) => {
                        Err(CompileError::new(span, format!("cannot cast to {t}; cast to a pointer ({t} *) instead")))
                    }
                    (Val::Str(p), Type::Ptr(_)) => Ok(Val::Int(*p, t)),
                    (Val::Str(_), Type::Str) => Ok(v),
                    (Val::Str(_), _) => Err(CompileError::new(span, format!("cannot cast a string to {t}"))),
                    (Val::Int(r, _), Type::Str) => Ok(Val::Str(*r)),
                    (Val::Int(r, _), _) => {
                        let r = self.norm_to(*r, &t);
                        Ok(Val::Int(r, t))
                    }
                }
            }
            ExprKind::SizeofType(ty) => {
                let t = resolve_type(self.g.input.kernel_types, ty)?;
                Ok(Val::Int(self.f.imm(self.type_size(&t) as i64), Type::ULONG))
            }
            ExprKind::SizeofExpr(x) => {
                let t = self.typer().object(x);
                Ok(Val::Int(self.f.imm(t.storage_size(self.g.opts.strsize) as i64), self.ty_of(e)))
            }
            ExprKind::Stringof(x) => {
                let v = self.expr(x)?;
                match v {
                    Val::Str(_) => Ok(v),
                    // A pointer names a string in memory: copy it (kernel or scratch memory).
                    Val::Int(r, Type::Ptr(_)) => {
                        let strsize = self.g.opts.strsize;
                        let off = self.temp(strsize);
                        let buf = self.scratch_ptr(off);
                        self.f.store(buf, 0, Operand::Imm(0), Size::DW);
                        self.f.call(helper::PROBE_READ_KERNEL_STR, vec![buf.into(), Operand::Imm(strsize as i64), r.into()]);
                        Ok(Val::Str(buf))
                    }
                    Val::Int(r, _) => Ok(self.lltostr(r)),
                }
            }
            ExprKind::AggRef(_) => Err(CompileError::new(span, "an aggregation can only be used with printa(), clear(), trunc(), normalize() or denormalize()")),
            ExprKind::Aggregate { .. } => self.aggregate(e).map(|_| Val::Int(self.f.imm(0), Type::Void)),
            ExprKind::Member { base, member, .. } if matches!(&base.node, ExprKind::Ident(n) if n == "args") => {
                if let Some(v) = self.stable_named(member, span) {
                    return v;
                }
                let fields = match &self.probe.args {
                    crate::probes::ArgSource::Tracepoint { fields } => fields.clone(),
                    _ => return Err(CompileError::new(span, format!("{} has no named arguments; use args[N] or argN", self.probe.desc.full_name()))),
                };
                match fields.iter().position(|f| &f.name == member) {
                    Some(i) => self.tp_field(i as u32).and_then(|v| self.sema_typed(e, v)),
                    None => {
                        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                        Err(CompileError::new(span, format!("{} has no argument named {member}; it has: {}", self.probe.desc.full_name(), names.join(", "))))
                    }
                }
            }
            ExprKind::Member { base, member, arrow } => {
                // A stable provider's DTrace structure member: `args[0]->pr_pid`.
                if let ExprKind::Index { base: b, index } = &base.node {
                    if let (ExprKind::Ident(n), [i]) = (&b.node, index.as_slice()) {
                        if let (true, ExprKind::Int { value, .. }) = (n == "args", &i.node) {
                            if let Some(v) = self.stable_member(*value as u32, member, span) {
                                return v;
                            }
                        }
                    }
                }
                self.member(base, member, *arrow, span).and_then(|v| self.sema_typed(e, v))
            }
            ExprKind::Offsetof { ty, member } => self.offset_of(ty, member, span),
        }
    }

    pub fn val_reg(&self, v: &Val) -> VReg {
        match v {
            Val::Int(r, _) | Val::Str(r) => *r,
        }
    }

    /// The text of macro variable `name`.
    fn macro_value(&self, name: &str) -> std::result::Result<String, String> {
        let input = self.g.input;
        crate::sema::macros::macro_value(name, input.target, &input.macro_args)
    }

    /// Sema's typing of expressions for the probe being lowered.
    pub fn typer(&self) -> Typer<'_> {
        Typer {
            kernel: self.g.input.kernel_types,
            vars: &self.g.types,
            args: &self.probe.args,
            probe: Some(&self.probe.desc),
        }
    }

    fn ident(&mut self, name: &str, span: Span) -> Result<Val> {
        if name == "NULL" {
            return Ok(Val::Int(self.f.imm(0), Type::Ptr(Box::new(Type::Void))));
        }
        if name == "curthread" {
            if let Some(v) = self.stable_thread(name, &Type::Void, span) {
                return v;
            }
            return Ok(self.curthread());
        }
        if signatures::variable(name).is_some() {
            return self.builtin(name, span);
        }
        if let Some((value, ty)) = self.g.types.inlines.get(name).cloned() {
            let v = self.expr(&value)?;
            return Ok(match (v, &ty) {
                (Val::Int(r, _), Type::Str) => Val::Str(r),
                (Val::Int(r, _), t) => {
                    let r = self.norm_to(r, t);
                    Val::Int(r, ty)
                }
                (s, _) => s,
            });
        }
        if self.g.vars.globals.contains_key(name) {
            return self.load_var(&Box::new(ast::Spanned {
                node: ExprKind::Ident(name.to_string()),
                span,
            }));
        }
        if self.g.vars.assocs.contains_key(name) {
            return Err(CompileError::new(
                span,
                format!("{name} is an associative array; index it: {name}[...]"),
            ));
        }
        Err(CompileError::new(
            span,
            format!("failed to resolve {name}: Unknown variable name"),
        ))
    }

    /// `args[i]`: typed tracepoint fields, or the raw arguments.
    fn args_index(&mut self, index: &[Expr], span: Span) -> Result<Val> {
        let i = match index {
            [e] => match &e.node {
                ExprKind::Int { value, .. } => *value as u32,
                _ => return Err(CompileError::new(e.span, "args[] needs a constant index")),
            },
            _ => return Err(CompileError::new(span, "args[] takes one index")),
        };
        if let Some(v) = self.stable_index(i, span) {
            return v;
        }
        if let crate::probes::ArgSource::Tracepoint { fields } = &self.probe.args {
            if i as usize >= fields.len() {
                return Err(CompileError::new(
                    span,
                    format!(
                        "index {i} is out of range for {} args[ ]",
                        self.probe.desc.full_name()
                    ),
                ));
            }
            return self.tp_field(i);
        }
        if let crate::probes::ArgSource::Fbt { params, ret, .. } = &self.probe.args {
            let known = if *ret {
                i <= 1
            } else {
                (i as usize) < params.len()
            };
            if !known {
                return Err(CompileError::new(
                    span,
                    format!(
                        "index {i} is out of range for {} args[ ]",
                        self.probe.desc.full_name()
                    ),
                ));
            }
        }
        // The argument's type is sema's (`Typer::arg`).
        let ty = self.typer().arg(i);
        self.check_arg(i, span)?;
        let r = self.arg(i);
        let r = self.norm_to(r, &ty);
        Ok(Val::Int(r, ty))
    }

    /// Tracepoint field `i`, typed; character arrays are copied out as strings.
    fn tp_field(&mut self, i: u32) -> Result<Val> {
        let field = match &self.probe.args {
            crate::probes::ArgSource::Tracepoint { fields } => fields[i as usize].clone(),
            _ => unreachable!(),
        };
        if field.ty == Type::Str {
            let strsize = self.g.opts.strsize;
            let off = self.temp(strsize);
            let buf = self.scratch_ptr(off);
            self.f.store(buf, 0, Operand::Imm(0), Size::DW);
            let (src, n) = if field.data_loc {
                // The u32 locator: length << 16 | offset of the data in the record.
                let loc = self
                    .f
                    .load(tracer_ebpf::ir::Function::CTX, field.offset as i16, Size::W);
                let at = self.f.alu(AluOp::And, loc, Operand::Imm(0xffff));
                (
                    self.f.alu(AluOp::Add, tracer_ebpf::ir::Function::CTX, at),
                    strsize,
                )
            } else {
                let src = self.f.alu(
                    AluOp::Add,
                    tracer_ebpf::ir::Function::CTX,
                    Operand::Imm(field.offset as i64),
                );
                (src, (field.size + 1).min(strsize))
            };
            self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![buf.into(), Operand::Imm(n as i64), src.into()],
            );
            return Ok(Val::Str(buf));
        }
        let r = self.arg(i);
        Ok(Val::Int(r, field.ty))
    }

    fn unary(&mut self, op: UnOp, e: &Expr, whole: &Expr) -> Result<Val> {
        let span = whole.span;
        let v = self.expr(e)?;
        let ty = self.ty_of(whole);
        match op {
            UnOp::Plus => Ok(v),
            UnOp::Neg => {
                let r = self.int_of(&v, e.span)?;
                let d = self.f.vreg();
                self.f.push(Inst::Neg { dst: d, a: r });
                let d = self.norm_to(d, &ty);
                Ok(Val::Int(d, ty))
            }
            UnOp::BitNot => {
                let r = self.int_of(&v, e.span)?;
                let d = self.f.alu(AluOp::Xor, r, Operand::Imm(-1));
                let d = self.norm_to(d, &ty);
                Ok(Val::Int(d, ty))
            }
            UnOp::Not => {
                let r = self.truth(&v, e.span)?;
                let d = self.f.imm(1);
                let done = self.f.label();
                self.f.branch(JmpOp::Jeq, r, Operand::Imm(0), done);
                self.f.push(Inst::Mov {
                    dst: d,
                    src: Operand::Imm(0),
                });
                self.f.push(Inst::Label(done));
                Ok(Val::Int(d, ty))
            }
            UnOp::Deref => {
                let r = self.int_of(&v, e.span)?;
                let pointee = match self.ty_of(e) {
                    Type::Ptr(_) => ty,
                    _ => {
                        return Err(CompileError::new(
                            span,
                            "operand of unary * must be a pointer",
                        ))
                    }
                };
                if pointee.is_aggregate() {
                    // `*p` names the object; its members are read when used.
                    return Ok(Val::Int(r, pointee));
                }
                if pointee == Type::Str || pointee == Type::Void {
                    return Err(CompileError::new(
                        span,
                        format!("cannot dereference a {pointee} pointer"),
                    ));
                }
                let (size, signed) = pointee.int_parts();
                let off = self.temp(8);
                let buf = self.scratch_ptr(off);
                let rc = self.f.call(
                    helper::PROBE_READ_KERNEL,
                    vec![buf.into(), Operand::Imm(size as i64), r.into()],
                );
                let ok = self.f.label();
                self.f.branch(JmpOp::Jeq, rc, Operand::Imm(0), ok);
                self.fault(Fault::BadAddr, r.into());
                self.f.push(Inst::Label(ok));
                let val = self
                    .f
                    .load(buf, 0, Size::from_bytes(size as u32).unwrap_or(Size::DW));
                let val = self.normalize(val, size, signed);
                Ok(Val::Int(val, pointee))
            }
            UnOp::AddrOf => Err(CompileError::new(
                span,
                "the & operator needs kernel symbols, which tracer does not support yet",
            )),
        }
    }

    fn binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, whole: &Expr) -> Result<Val> {
        let span = whole.span;
        let ty = self.ty_of(whole);
        match op {
            BinOp::LogAnd | BinOp::LogOr => {
                let out = self.f.vreg();
                let done = self.f.label();
                let a = self.expr(lhs)?;
                let a = self.truth(&a, lhs.span)?;
                let short = if op == BinOp::LogAnd { 0 } else { 1 };
                self.f.push(Inst::Mov {
                    dst: out,
                    src: Operand::Imm(short),
                });
                self.f.branch(
                    if op == BinOp::LogAnd {
                        JmpOp::Jeq
                    } else {
                        JmpOp::Jne
                    },
                    a,
                    Operand::Imm(0),
                    done,
                );
                let b = self.expr(rhs)?;
                let b = self.truth(&b, rhs.span)?;
                self.f.push(Inst::Mov {
                    dst: out,
                    src: Operand::Imm(1),
                });
                self.f.branch(JmpOp::Jne, b, Operand::Imm(0), done);
                self.f.push(Inst::Mov {
                    dst: out,
                    src: Operand::Imm(0),
                });
                self.f.push(Inst::Label(done));
                return Ok(Val::Int(out, ty));
            }
            BinOp::Comma => {
                self.expr(lhs)?;
                return self.expr(rhs);
            }
            _ => {}
        }
        let a = self.expr(lhs)?;
        let b = self.expr(rhs)?;
        if let (Val::Str(x), Val::Str(y)) = (&a, &b) {
            let (cond, d) = self.string_compare(op, *x, *y, lhs, rhs, span)?;
            return Ok(Val::Int(self.compare(cond, d, Operand::Imm(0)), ty));
        }
        let (ta, tb) = (self.ty_of(lhs), self.ty_of(rhs));
        let x = self.int_of(&a, lhs.span)?;
        let y = self.int_of(&b, rhs.span)?;
        // Operands compare and divide in their common type.
        let signed = Type::arith(&ta, &tb).int_parts().1;
        if let Some(cond) = cmp_cond(op, signed) {
            return Ok(Val::Int(self.compare(cond, x, y.into()), ty));
        }
        let result = match op {
            BinOp::LogXor => {
                let p = self.compare(JmpOp::Jne, x, Operand::Imm(0));
                let q = self.compare(JmpOp::Jne, y, Operand::Imm(0));
                return Ok(Val::Int(self.f.alu(AluOp::Xor, p, q), ty));
            }
            BinOp::Add => self.f.alu(AluOp::Add, x, y),
            BinOp::Sub => self.f.alu(AluOp::Sub, x, y),
            BinOp::Mul => self.f.alu(AluOp::Mul, x, y),
            BinOp::BitAnd => self.f.alu(AluOp::And, x, y),
            BinOp::BitOr => self.f.alu(AluOp::Or, x, y),
            BinOp::BitXor => self.f.alu(AluOp::Xor, x, y),
            BinOp::Shl => self.f.alu(AluOp::Lsh, x, y),
            BinOp::Shr => {
                let lt = ta.int_parts().1;
                self.f.alu(if lt { AluOp::Arsh } else { AluOp::Rsh }, x, y)
            }
            BinOp::Div | BinOp::Mod => self.divide(op == BinOp::Div, x, y, signed),
            _ => unreachable!(),
        };
        let r = self.norm_to(result, &ty);
        Ok(Val::Int(r, ty))
    }

    /// strcmp of two strings, and the condition on its result that `op` means.
    fn string_compare(
        &mut self,
        op: BinOp,
        x: VReg,
        y: VReg,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Result<(JmpOp, VReg)> {
        let cond = cmp_cond(op, true).ok_or_else(|| {
            CompileError::new(
                span,
                format!("operator {} cannot be applied to strings", op.symbol()),
            )
        })?;
        let max = self
            .literal_bound(lhs)
            .or(self.literal_bound(rhs))
            .unwrap_or(self.g.opts.strsize);
        let d = self.f.vreg();
        self.f.push(Inst::StrCmp {
            dst: d,
            a: x,
            b: y,
            max,
        });
        Ok((cond, d))
    }

    /// Jump to `target` when `e` is true (`when`) or false (`!when`). Comparisons, `&&`,
    /// `||` and `!` become branches directly instead of 0/1 values tested afterwards.
    pub fn cond_branch(&mut self, e: &Expr, when: bool, target: Label) -> Result<()> {
        match &e.node {
            ExprKind::Unary {
                op: UnOp::Not,
                expr,
            } => self.cond_branch(expr, !when, target),
            ExprKind::Binary {
                op: op @ (BinOp::LogAnd | BinOp::LogOr),
                lhs,
                rhs,
            } => {
                // `a && b` is true when both are; `a || b` when either is.
                let all = *op == BinOp::LogAnd;
                if when == all {
                    let skip = self.f.label();
                    self.cond_branch(lhs, !all, skip)?;
                    self.cond_branch(rhs, when, target)?;
                    self.f.push(Inst::Label(skip));
                } else {
                    self.cond_branch(lhs, when, target)?;
                    self.cond_branch(rhs, when, target)?;
                }
                Ok(())
            }
            ExprKind::Binary { op, lhs, rhs } if cmp_cond(*op, true).is_some() => {
                let a = self.expr(lhs)?;
                let b = self.expr(rhs)?;
                let (cond, x, y) = match (&a, &b) {
                    (Val::Str(x), Val::Str(y)) => {
                        let (cond, d) = self.string_compare(*op, *x, *y, lhs, rhs, e.span)?;
                        (cond, d, Operand::Imm(0))
                    }
                    _ => {
                        let signed = Type::arith(&a.ty(), &b.ty()).int_parts().1;
                        let x = self.int_of(&a, lhs.span)?;
                        let y = self.int_of(&b, rhs.span)?;
                        (cmp_cond(*op, signed).unwrap(), x, Operand::Reg(y))
                    }
                };
                self.f
                    .branch(if when { cond } else { cond.negate() }, x, y, target);
                Ok(())
            }
            _ => {
                let v = self.expr(e)?;
                let c = self.truth(&v, e.span)?;
                self.f.branch(
                    if when { JmpOp::Jne } else { JmpOp::Jeq },
                    c,
                    Operand::Imm(0),
                    target,
                );
                Ok(())
            }
        }
    }

    /// A string literal operand bounds a comparison to its length + 1.
    fn literal_bound(&self, e: &Expr) -> Option<u32> {
        match &e.node {
            ExprKind::Str(s) => Some((s.len() as u32 + 1).min(self.g.opts.strsize)),
            _ => None,
        }
    }

    /// 1 if `a cond b`, else 0.
    pub fn compare(&mut self, cond: JmpOp, a: VReg, b: Operand) -> VReg {
        let out = self.f.imm(1);
        let done = self.f.label();
        self.f.branch(cond, a, b, done);
        self.f.push(Inst::Mov {
            dst: out,
            src: Operand::Imm(0),
        });
        self.f.push(Inst::Label(done));
        out
    }

    /// D division: a zero divisor is a fault; signed operands divide toward zero.
    fn divide(&mut self, div: bool, x: VReg, y: VReg, signed: bool) -> VReg {
        let ok = self.f.label();
        self.f.branch(JmpOp::Jne, y, Operand::Imm(0), ok);
        self.fault(Fault::DivZero, Operand::Imm(0));
        self.f.push(Inst::Label(ok));
        let op = if div { AluOp::Div } else { AluOp::Mod };
        if !signed {
            return self.f.alu(op, x, y);
        }
        // |x| op |y|, then fix the sign: quotient negative when signs differ, remainder takes
        // the dividend's sign.
        let ax = self.abs(x);
        let ay = self.abs(y);
        let q = self.f.alu(op, ax, ay);
        let sign_src = if div { self.f.alu(AluOp::Xor, x, y) } else { x };
        let out = self.f.mov(q);
        let done = self.f.label();
        self.f.branch(JmpOp::Jsge, sign_src, Operand::Imm(0), done);
        self.f.push(Inst::Neg { dst: out, a: q });
        self.f.push(Inst::Label(done));
        out
    }

    fn abs(&mut self, x: VReg) -> VReg {
        let out = self.f.mov(x);
        let done = self.f.label();
        self.f.branch(JmpOp::Jsge, x, Operand::Imm(0), done);
        self.f.push(Inst::Neg { dst: out, a: x });
        self.f.push(Inst::Label(done));
        out
    }
}

/// The jump condition that holds when `a op b`, for a comparison operator.
fn cmp_cond(op: BinOp, signed: bool) -> Option<JmpOp> {
    let pick = |s: JmpOp, u: JmpOp| if signed { s } else { u };
    Some(match op {
        BinOp::Eq => JmpOp::Jeq,
        BinOp::Ne => JmpOp::Jne,
        BinOp::Lt => pick(JmpOp::Jslt, JmpOp::Jlt),
        BinOp::Le => pick(JmpOp::Jsle, JmpOp::Jle),
        BinOp::Gt => pick(JmpOp::Jsgt, JmpOp::Jgt),
        BinOp::Ge => pick(JmpOp::Jsge, JmpOp::Jge),
        _ => return None,
    })
}
