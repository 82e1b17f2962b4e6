//! Kernel objects typed by BTF: `p->member`, `s.member`, `a[i]` on pointers and arrays,
//! `*p` on struct pointers, casts to kernel types and `curthread`. A struct or array value
//! is the address of the object; a member is read only when its value is needed, with
//! `bpf_probe_read_kernel`, and a failed read raises DTrace's invalid-address fault.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::btf::Btf;
use crate::sema::resolve::{self, resolve_type};
use crate::syntax::ast::{Expr, ExprKind, Span, TypeName};
use crate::types::Type;
use tracer_common::record::Fault;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Operand, VReg};

impl Lower<'_, '_> {
    fn btf(&self, span: Span) -> Result<&Btf> {
        self.g.input.kernel_types.get().ok_or_else(|| {
            CompileError::new(
                span,
                "struct members need kernel BTF (/sys/kernel/btf/vmlinux), which this kernel does not provide",
            )
        })
    }

    /// `curthread`: the current `struct task_struct *`.
    pub(crate) fn curthread(&mut self) -> Val {
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        Val::Int(task, resolve::curthread_type(self.g.input.kernel_types))
    }

    /// `base->member` (arrow) or `base.member`.
    pub(crate) fn member(
        &mut self,
        base: &Expr,
        member: &str,
        arrow: bool,
        span: Span,
    ) -> Result<Val> {
        let (at, m) = self.member_addr(base, member, arrow, span)?;
        if m.bitfield_size > 0 {
            return self.read_bitfield(at, m.bit_offset % 8, m.bitfield_size, m.ty, span);
        }
        self.read_kernel(at, m.ty, span)
    }

    /// The address of `base->member` / `base.member`, and the member.
    fn member_addr(
        &mut self,
        base: &Expr,
        member: &str,
        arrow: bool,
        span: Span,
    ) -> Result<(VReg, crate::btf::Member)> {
        let v = self.expr(base)?;
        let (addr, ty) = match (&v, arrow) {
            (Val::Int(r, Type::Ptr(t)), true) if matches!(**t, Type::Struct { .. }) => {
                (*r, (**t).clone())
            }
            (Val::Int(r, t @ Type::Struct { .. }), false) => (*r, t.clone()),
            (_, true) => {
                let why = if self.g.input.kernel_types.get().is_none() {
                    "; this kernel has no BTF (/sys/kernel/btf/vmlinux), so kernel arguments are untyped integers"
                } else {
                    ""
                };
                return Err(CompileError::new(
                    span,
                    format!(
                        "operator -> cannot be applied to a {}; it needs a pointer to a struct or union{why}",
                        v.ty()
                    ),
                ));
            }
            (_, false) => {
                return Err(CompileError::new(
                    span,
                    format!(
                        "operator . cannot be applied to a {}; it needs a struct or union{}",
                        v.ty(),
                        if matches!(v.ty(), Type::Ptr(_)) {
                            " (use ->)"
                        } else {
                            ""
                        }
                    ),
                ))
            }
        };
        let Type::Struct { id, size, .. } = &ty else {
            unreachable!()
        };
        let btf = self.btf(span)?;
        if *size == 0 {
            return Err(CompileError::new(
                span,
                format!("{ty} is only declared in kernel BTF, so its members are unknown"),
            ));
        }
        let Some(m) = btf.member(*id, member) else {
            let names = btf.member_names(*id);
            let shown = names
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if names.len() > 12 { ", ..." } else { "" };
            return Err(CompileError::new(
                span,
                format!("{ty} has no member named {member}; it has: {shown}{more}"),
            ));
        };
        let at = self
            .f
            .alu(AluOp::Add, addr, Operand::Imm((m.bit_offset / 8) as i64));
        Ok((at, m))
    }

    /// `base[i]` where base is a kernel pointer or array.
    pub(crate) fn index_memory(&mut self, base: &Expr, index: &Expr, span: Span) -> Result<Val> {
        // A member array (`curthread->comm[0]`) is indexed in place, not read as a string.
        let base = match &base.node {
            ExprKind::Member {
                base: inner,
                member,
                arrow,
            } => {
                let (at, m) = self.member_addr(inner, member, *arrow, base.span)?;
                if m.ty.is_aggregate() {
                    Val::Int(at, m.ty)
                } else if m.bitfield_size > 0 {
                    self.read_bitfield(at, m.bit_offset % 8, m.bitfield_size, m.ty, span)?
                } else {
                    self.read_kernel(at, m.ty, span)?
                }
            }
            _ => self.expr(base)?,
        };
        let elem = match base.ty() {
            Type::Ptr(t) | Type::Array { elem: t, .. } => *t,
            other => {
                return Err(CompileError::new(
                    span,
                    format!(
                    "a {other} cannot be indexed; only pointers, arrays and associative arrays can"
                ),
                ))
            }
        };
        let esize = elem.storage_size(self.g.opts.strsize);
        if esize == 0 || elem == Type::Str {
            return Err(CompileError::new(
                span,
                format!("cannot index a pointer to {elem}"),
            ));
        }
        let i = self.expr(index)?;
        let i = self.int_of(&i, index.span)?;
        let scaled = self.f.alu(AluOp::Mul, i, Operand::Imm(esize as i64));
        let at = self.f.alu(AluOp::Add, self.val_reg(&base), scaled);
        self.read_kernel(at, elem, span)
    }

    /// The value of a `ty` at kernel address `at`: structs and arrays stay addresses, char
    /// arrays become strings, integers and pointers are read.
    pub(crate) fn read_kernel(&mut self, at: VReg, ty: Type, span: Span) -> Result<Val> {
        match &ty {
            Type::Array { elem, len } if matches!(**elem, Type::Int { size: 1, .. }) => {
                let strsize = self.g.opts.strsize;
                let off = self.temp(strsize);
                let buf = self.scratch_ptr(off);
                self.f.store(buf, 0, Operand::Imm(0), Size::DW);
                let n = (*len + 1).min(strsize);
                self.f.call(
                    helper::PROBE_READ_KERNEL_STR,
                    vec![buf.into(), Operand::Imm(n as i64), at.into()],
                );
                Ok(Val::Str(buf))
            }
            Type::Struct { .. } | Type::Array { .. } => Ok(Val::Int(at, ty)),
            Type::Int { .. } | Type::Ptr(_) => {
                let (size, signed) = ty.int_parts();
                let val = self.read_scalar(at, size as u32, span)?;
                let val = self.normalize(val, size, signed);
                Ok(Val::Int(val, ty))
            }
            other => Err(CompileError::new(
                span,
                format!("a {other} member cannot be read"),
            )),
        }
    }

    /// Read `size` bytes at kernel address `at` into a register, faulting on a bad address.
    fn read_scalar(&mut self, at: VReg, size: u32, _span: Span) -> Result<VReg> {
        let off = self.temp(8);
        let buf = self.scratch_ptr(off);
        if size < 8 {
            self.f.store(buf, 0, Operand::Imm(0), Size::DW);
        }
        let rc = self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![buf.into(), Operand::Imm(size as i64), at.into()],
        );
        let ok = self.f.label();
        self.f.branch(JmpOp::Jeq, rc, Operand::Imm(0), ok);
        self.fault(Fault::BadAddr, at.into());
        self.f.push(Inst::Label(ok));
        Ok(self
            .f
            .load(buf, 0, Size::from_bytes(size).unwrap_or(Size::DW)))
    }

    /// A bitfield `bits` wide, `shift` bits into the byte at `at` (little-endian).
    fn read_bitfield(
        &mut self,
        at: VReg,
        shift: u32,
        bits: u32,
        ty: Type,
        span: Span,
    ) -> Result<Val> {
        let bytes = (shift + bits).div_ceil(8);
        let raw = self.read_scalar(at, bytes, span)?;
        let (_, signed) = ty.int_parts();
        // Move the field to the top, then back down: this masks and sign-extends at once.
        let up = self
            .f
            .alu(AluOp::Lsh, raw, Operand::Imm((64 - shift - bits) as i64));
        let op = if signed { AluOp::Arsh } else { AluOp::Rsh };
        let v = self.f.alu(op, up, Operand::Imm((64 - bits) as i64));
        Ok(Val::Int(v, ty))
    }

    /// `sizeof(type)` for any type, kernel types included.
    pub(crate) fn type_size(&self, ty: &Type) -> u32 {
        ty.storage_size(self.g.opts.strsize)
    }

    /// `offsetof(struct T, member)`.
    pub(crate) fn offset_of(&mut self, ty: &TypeName, member: &str, span: Span) -> Result<Val> {
        let t = resolve_type(self.g.input.kernel_types, ty)?;
        let Type::Struct { id, .. } = &t else {
            return Err(CompileError::new(
                span,
                format!("offsetof needs a struct or union type, not {t}"),
            ));
        };
        let m = self
            .btf(span)?
            .member(*id, member)
            .ok_or_else(|| CompileError::new(span, format!("{t} has no member named {member}")))?;
        Ok(Val::Int(self.f.imm((m.bit_offset / 8) as i64), Type::ULONG))
    }

    /// Whether `base[...]` indexes memory (a pointer or array) rather than an associative
    /// array or `args[]`.
    pub(crate) fn indexes_memory(&self, base: &Expr) -> bool {
        self.typer().indexes_memory(base)
    }
}
