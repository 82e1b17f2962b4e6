//! Expression typing: the D type of every expression, from the signature table, literal
//! rules, variable types, kernel BTF and the probe's arguments. One walk, [`Typer::ty`];
//! [`Typer::record`] keeps the type of every subexpression in an [`ExprTypes`] side table.
//!
//! The types are those lowering gives the values it computes: a char array read from kernel
//! memory is a `string` (`curthread->comm`), a struct or array stays an object (its address),
//! `args[i]` has the probe's argument type. Where an expression is wrong (an unknown name, a
//! member a struct does not have) its type is `long long` and lowering reports the error at
//! its place, in script order.

use super::literals::{self, int_literal_type};
use super::resolve::{curthread_type, resolve_type};
use super::signatures;
use super::vars::VarTypes;
use crate::btf::KernelTypes;
use crate::probes::ArgSource;
use crate::syntax::ast::{BinOp, Expr, ExprKind, Span, UnOp};
use crate::types::Type;
use std::collections::HashMap;

/// The type of each expression of a clause, keyed by its span and kind (an `a += b` and the
/// `a + b` it means share a span).
#[derive(Debug, Default, Clone)]
pub struct ExprTypes(HashMap<(Span, std::mem::Discriminant<ExprKind>), Type>);

impl ExprTypes {
    pub fn get(&self, e: &Expr) -> Option<&Type> {
        self.0.get(&(e.span, std::mem::discriminant(&e.node)))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What types an expression of one clause, for one probe.
pub struct Typer<'a> {
    pub kernel: &'a KernelTypes,
    pub vars: &'a VarTypes,
    /// The arguments of the probe the clause is typed for (`ArgSource::None` without one).
    pub args: &'a ArgSource,
}

/// The value a `ty` at a kernel address has once read: char arrays are strings; structs,
/// arrays, integers and pointers are themselves.
pub fn read_type(ty: Type) -> Type {
    match ty {
        Type::Array { elem, .. } if matches!(*elem, Type::Int { size: 1, .. }) => Type::Str,
        t => t,
    }
}

impl Typer<'_> {
    /// The type of `e` and of all its subexpressions, recorded in `out`.
    pub fn record(&self, e: &Expr, out: &mut ExprTypes) -> Type {
        crate::syntax::ast::walk(e, &mut |x| {
            let t = self.ty(x);
            out.0.insert((x.span, std::mem::discriminant(&x.node)), t);
        });
        self.ty(e)
    }

    /// The type of `e`.
    pub fn ty(&self, e: &Expr) -> Type {
        match &e.node {
            ExprKind::Int { value, suffix } => int_literal_type(*value, suffix),
            ExprKind::Char(_) => literals::CHAR,
            ExprKind::Str(_) | ExprKind::MacroStr(_) | ExprKind::Stringof(_) => Type::Str,
            ExprKind::Macro(_) => literals::MACRO,
            ExprKind::Ident(n) => self.ident(n),
            ExprKind::SelfVar(n) => self.vars.thread.get(n).map_or(Type::LONG, |d| d.1.clone()),
            ExprKind::ThisVar(n) => self.vars.this.get(n).cloned().unwrap_or(Type::LONG),
            ExprKind::Index { base, index } => self.index(base, index),
            ExprKind::Call { func, .. } => {
                signatures::subroutine(&func.node).map_or(Type::LONG, |s| s.result())
            }
            ExprKind::Unary { op, expr } => match op {
                UnOp::Not => Type::INT,
                UnOp::Deref => match self.ty(expr) {
                    Type::Ptr(t) => *t,
                    _ => Type::LONG,
                },
                _ => self.ty(expr),
            },
            ExprKind::Binary { op, lhs, rhs } => {
                use BinOp::*;
                match op {
                    Eq | Ne | Lt | Le | Gt | Ge | LogAnd | LogOr | LogXor => Type::INT,
                    Comma => self.ty(rhs),
                    Shl | Shr => self.ty(lhs),
                    _ => Type::arith(&self.ty(lhs), &self.ty(rhs)),
                }
            }
            ExprKind::Cond { then, els, .. } => match (self.ty(then), self.ty(els)) {
                (Type::Str, _) => Type::Str,
                (a, b) => Type::arith(&a, &b),
            },
            // The value stored: converted to an integer variable's type.
            ExprKind::Assign { lhs, rhs, op } => {
                let value = match op {
                    None => self.ty(rhs),
                    Some(BinOp::Shl | BinOp::Shr) => self.ty(lhs),
                    Some(_) => Type::arith(&self.ty(lhs), &self.ty(rhs)),
                };
                match self.declared(lhs) {
                    Some(t) if t.is_int() && value != Type::Str => t,
                    _ => value,
                }
            }
            ExprKind::IncDec { expr, .. } => self.ty(expr),
            ExprKind::Cast { ty, .. } => resolve_type(self.kernel, ty).unwrap_or(Type::LONG),
            ExprKind::SizeofType(_) | ExprKind::SizeofExpr(_) | ExprKind::Offsetof { .. } => {
                Type::ULONG
            }
            ExprKind::Member {
                base,
                member,
                arrow,
            } => self.member(base, member, *arrow),
            ExprKind::AggRef(_) | ExprKind::Aggregate { .. } => Type::Void,
        }
    }

    /// The type of the object `e` names, for `sizeof`: a kernel member's declared type (a
    /// `char [16]` is 16 bytes, though its value is a string), else the value's type.
    pub fn object(&self, e: &Expr) -> Type {
        if let ExprKind::Member {
            base,
            member,
            arrow,
        } = &e.node
        {
            if !matches!(&base.node, ExprKind::Ident(n) if n == "args") {
                if let Some(t) = self.member_raw(base, member, *arrow) {
                    return t;
                }
            }
        }
        self.ty(e)
    }

    /// The type of a variable `lhs` names, when it has one.
    pub fn declared(&self, lhs: &Expr) -> Option<Type> {
        let v = self.vars;
        match &lhs.node {
            ExprKind::Ident(n) => v.globals.get(n).cloned(),
            ExprKind::SelfVar(n) => v.thread.get(n).map(|d| d.1.clone()),
            ExprKind::ThisVar(n) => v.this.get(n).cloned(),
            ExprKind::Index { base, .. } if !self.indexes_memory(base) => match &base.node {
                ExprKind::Ident(n) => v.assocs.get(n).map(|d| d.1.clone()),
                ExprKind::SelfVar(n) => v.thread.get(n).map(|d| d.1.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    fn ident(&self, n: &str) -> Type {
        if n == "NULL" {
            return Type::Ptr(Box::new(Type::Void));
        }
        if n == "curthread" {
            return self
                .stable_thread(n)
                .unwrap_or_else(|| curthread_type(self.kernel));
        }
        if let Some(t) = signatures::variable(n) {
            return t;
        }
        if let Some((_, t)) = self.vars.inlines.get(n) {
            return t.clone();
        }
        self.vars.globals.get(n).cloned().unwrap_or(Type::LONG)
    }

    /// Whether `base[...]` indexes memory (a pointer or array) rather than an associative
    /// array or `args[]`.
    pub fn indexes_memory(&self, base: &Expr) -> bool {
        match &base.node {
            ExprKind::Ident(n) => {
                n != "args"
                    && n != "uregs"
                    && !self.vars.assocs.contains_key(n)
                    && self.vars.globals.contains_key(n)
            }
            ExprKind::SelfVar(n) => self.vars.thread.get(n).is_some_and(|d| d.0.is_empty()),
            _ => true,
        }
    }

    fn index(&self, base: &Expr, index: &[Expr]) -> Type {
        if let ExprKind::Ident(n) = &base.node {
            match n.as_str() {
                "args" => {
                    return match index {
                        [i] => match &i.node {
                            ExprKind::Int { value, .. } => self.arg(*value as u32),
                            _ => Type::LONG,
                        },
                        _ => Type::LONG,
                    }
                }
                "uregs" => return signatures::UREGS.ty(),
                _ => {}
            }
        }
        if self.indexes_memory(base) {
            // A member array is indexed in place, not read as a string.
            let object = match &base.node {
                ExprKind::Member {
                    base: inner,
                    member,
                    arrow,
                } => self.member_raw(inner, member, *arrow).unwrap_or(Type::LONG),
                _ => self.ty(base),
            };
            return match object {
                Type::Ptr(t) | Type::Array { elem: t, .. } => read_type(*t),
                _ => Type::LONG,
            };
        }
        match &base.node {
            ExprKind::Ident(n) => self.vars.assocs.get(n).map_or(Type::LONG, |d| d.1.clone()),
            ExprKind::SelfVar(n) => self.vars.thread.get(n).map_or(Type::LONG, |d| d.1.clone()),
            _ => Type::LONG,
        }
    }

    /// `args[i]` of the probe.
    pub fn arg(&self, i: u32) -> Type {
        match self.args {
            ArgSource::Stable(s) => s
                .args
                .get(i as usize)
                .map_or(Type::LONG, |a| self.stable_expr(&s.base, &a.expr)),
            ArgSource::Tracepoint { fields } => {
                fields.get(i as usize).map_or(Type::LONG, |f| f.ty.clone())
            }
            ArgSource::SyscallEntry { args } => args.get(i as usize).cloned().unwrap_or(Type::LONG),
            ArgSource::Fbt {
                params,
                ret_type,
                ret,
                ..
            } => {
                let ty = match (*ret, i) {
                    (false, i) => params.get(i as usize).map(|p| p.1.clone()),
                    (true, 1) => Some(ret_type.clone()),
                    _ => None,
                };
                match ty {
                    // A struct passed by value arrives in registers: its first word.
                    Some(t) if !t.is_aggregate() && t != Type::Void => t,
                    _ => Type::LONG,
                }
            }
            ArgSource::Usdt { args } => args.get(i as usize).map_or(Type::LONG, |a| Type::Int {
                size: a.size,
                signed: a.signed,
            }),
            _ => Type::LONG,
        }
    }

    /// The type of a stable provider's expression, read against its underlying probe.
    fn stable_expr(&self, base: &ArgSource, src: &str) -> Type {
        match crate::syntax::parse_expr(0, src) {
            Ok(e) => Typer {
                args: base,
                ..*self
            }
            .ty(&e),
            Err(_) => Type::LONG,
        }
    }

    /// `curthread` (or another builtin) when the probe runs "in" another thread.
    fn stable_thread(&self, name: &str) -> Option<Type> {
        let ArgSource::Stable(s) = self.args else {
            return None;
        };
        let (_, src) = s.thread.iter().find(|(n, _)| n == name)?;
        Some(self.stable_expr(&s.base, src))
    }

    fn member(&self, base: &Expr, member: &str, arrow: bool) -> Type {
        match &base.node {
            ExprKind::Ident(n) if n == "args" => match self.args {
                ArgSource::Stable(s) => s
                    .args
                    .iter()
                    .find(|a| a.name == member)
                    .map_or(Type::LONG, |a| self.stable_expr(&s.base, &a.expr)),
                ArgSource::Tracepoint { fields } => fields
                    .iter()
                    .find(|f| f.name == member)
                    .map_or(Type::LONG, |f| f.ty.clone()),
                _ => Type::LONG,
            },
            ExprKind::Index { base: b, index } => {
                // A stable provider's DTrace structure member: `args[0]->pr_pid`.
                if let (ExprKind::Ident(n), [i], ArgSource::Stable(s)) =
                    (&b.node, index.as_slice(), self.args)
                {
                    if let (true, ExprKind::Int { value, .. }) = (n == "args", &i.node) {
                        let found = s
                            .members
                            .iter()
                            .find(|(k, m, _)| *k == *value as u32 && m == member);
                        if let Some((_, _, src)) = found {
                            return self.stable_expr(&s.base, src);
                        }
                    }
                }
                self.member_raw(base, member, arrow)
                    .map_or(Type::LONG, read_type)
            }
            _ => self
                .member_raw(base, member, arrow)
                .map_or(Type::LONG, read_type),
        }
    }

    /// Whether every name in `e` means something sema can type for sure: variables that
    /// exist, built-ins, inlines, kernel members BTF has, subroutines. Probe arguments, macro
    /// variables and `uregs[]` are left to lowering, which knows their errors.
    pub fn resolves(&self, e: &Expr) -> bool {
        let mut ok = true;
        crate::syntax::ast::walk(e, &mut |x| ok &= self.node_resolves(x));
        ok
    }

    fn node_resolves(&self, x: &Expr) -> bool {
        let v = self.vars;
        match &x.node {
            ExprKind::Ident(n) => {
                n == "NULL"
                    || n == "curthread"
                    || signatures::variable(n).is_some()
                    || v.inlines.contains_key(n)
                    || v.globals.contains_key(n)
            }
            ExprKind::SelfVar(n) => v.thread.contains_key(n),
            ExprKind::ThisVar(n) => v.this.contains_key(n),
            ExprKind::Index { base, index } => match &base.node {
                ExprKind::Ident(n) if n == "args" || n == "uregs" => false,
                ExprKind::Ident(n) if !self.indexes_memory(base) => v.assocs.contains_key(n),
                ExprKind::SelfVar(_) if !self.indexes_memory(base) => true,
                _ => {
                    index.len() == 1
                        && matches!(self.ty(base), Type::Ptr(t) | Type::Array { elem: t, .. }
                            if !matches!(*t, Type::Void | Type::Str))
                }
            },
            ExprKind::Member {
                base,
                member,
                arrow,
            } => {
                !matches!(&base.node, ExprKind::Ident(n) if n == "args")
                    && !matches!(self.args, ArgSource::Stable(_))
                    && self.member_raw(base, member, *arrow).is_some()
            }
            ExprKind::Call { func, .. } => signatures::subroutine(&func.node).is_some(),
            ExprKind::Unary {
                op: UnOp::Deref,
                expr,
            } => matches!(self.ty(expr), Type::Ptr(t) if !matches!(*t, Type::Void | Type::Str)),
            ExprKind::Unary {
                op: UnOp::AddrOf, ..
            } => false,
            ExprKind::Cast { ty, expr } => match resolve_type(self.kernel, ty) {
                Ok(t) if t.is_aggregate() => false,
                Ok(t) => self.ty(expr) != Type::Str || matches!(t, Type::Ptr(_) | Type::Str),
                Err(_) => false,
            },
            ExprKind::SizeofType(ty) => resolve_type(self.kernel, ty).is_ok(),
            ExprKind::Macro(_)
            | ExprKind::MacroStr(_)
            | ExprKind::AggRef(_)
            | ExprKind::Aggregate { .. }
            | ExprKind::Offsetof { .. } => false,
            _ => true,
        }
    }

    /// The declared type of `base->member` / `base.member`, from BTF.
    fn member_raw(&self, base: &Expr, member: &str, arrow: bool) -> Option<Type> {
        let object = match (self.ty(base), arrow) {
            (Type::Ptr(t), true) => *t,
            (t @ Type::Struct { .. }, false) => t,
            _ => return None,
        };
        let Type::Struct { id, .. } = object else {
            return None;
        };
        Some(self.kernel.get()?.member(id, member)?.ty)
    }
}
