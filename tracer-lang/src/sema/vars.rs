//! Variable types, decided before lowering: globals, thread-locals (`self->`), clause-locals
//! (`this->`), associative arrays (key and value types) and inlines.
//!
//! A variable has its declared type, or else the type of the first value assigned to it in
//! the script, as in D (integers at least as wide as `int`). A variable first given an
//! integer or `void *` takes the pointer type of a later typed pointer stored into it
//! (`self->t = 0; ... self->t = curthread`), so that members can be reached through it. The
//! values are typed by [`Typer`], each clause against the first probe it is lowered for.

use super::resolve::resolve_type;
use super::signatures;
use super::typeck::Typer;
use crate::btf::KernelTypes;
use crate::diag::{CompileError, Result};
use crate::probes::ArgSource;
use crate::syntax::ast::{self, Expr, ExprKind, Item, Stmt, Storage};
use crate::types::Type;
use std::collections::BTreeMap;

/// The type of every variable of a script.
#[derive(Debug, Default, Clone)]
pub struct VarTypes {
    pub globals: BTreeMap<String, Type>,
    /// Associative arrays: (key types, value type).
    pub assocs: BTreeMap<String, (Vec<Type>, Type)>,
    /// Thread-locals: (key types of `self->a[k]`, value type).
    pub thread: BTreeMap<String, (Vec<Type>, Type)>,
    pub this: BTreeMap<String, Type>,
    /// `inline type name = value;`: the value and its type.
    pub inlines: BTreeMap<String, (Expr, Type)>,
}

/// One clause to type, and the arguments of the probe it is typed against.
pub struct ClauseTyping<'a> {
    pub clause: &'a ast::Clause,
    pub args: &'a ArgSource,
}

/// Decide the type of every variable of `script` (whose clauses are `clauses`, in order).
pub fn decide(
    script: &ast::Script,
    clauses: &[ClauseTyping],
    kernel: &KernelTypes,
) -> Result<VarTypes> {
    let mut v = VarTypes::default();
    for item in &script.items {
        match item {
            Item::Decl(d) => declare(&mut v, kernel, d)?,
            Item::Inline {
                ty,
                name,
                value,
                span,
            } => {
                let t = Type::from_name(&ty.base, ty.pointers).ok_or_else(|| {
                    CompileError::new(*span, format!("unknown type `{}`", ty.base))
                })?;
                v.inlines.insert(name.node.clone(), (value.clone(), t));
            }
            _ => {}
        }
    }
    for c in clauses {
        for s in &c.clause.body {
            if let Stmt::Decl(d) = s {
                declare(&mut v, kernel, d)?;
            }
        }
    }
    // Infer from assignments, in script order; two rounds so that `x = y` sees y's type.
    for _round in 0..2 {
        for c in clauses {
            let mut exprs: Vec<&Expr> = Vec::new();
            collect_exprs(&c.clause.body, &mut exprs);
            if let Some(p) = &c.clause.predicate {
                exprs.push(p);
            }
            for e in exprs {
                // Type every assignment of `e` with the variables as they are, then apply.
                let typer = Typer {
                    kernel,
                    vars: &v,
                    args: c.args,
                };
                let found = assignments(&typer, e);
                for (lhs, ty, keys) in found {
                    assign(&mut v, &lhs, ty, keys);
                }
            }
        }
    }
    Ok(v)
}

fn declare(v: &mut VarTypes, kernel: &KernelTypes, d: &ast::Decl) -> Result<()> {
    let ty = resolve_type(kernel, &d.ty)?;
    if ty.is_aggregate() {
        return Err(CompileError::new(
            d.ty.span,
            format!("a variable cannot hold a {ty}; declare a pointer ({ty} *)"),
        ));
    }
    let name = d.name.node.clone();
    let keys = match &d.keys {
        Some(ks) => ks
            .iter()
            .map(|k| resolve_type(kernel, k))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    match d.storage {
        Storage::Global if d.keys.is_some() => {
            v.assocs.insert(name, (keys, ty));
        }
        Storage::Global => {
            v.globals.insert(name, ty);
        }
        Storage::Thread => {
            v.thread.insert(name, (keys, ty));
        }
        Storage::Clause => {
            v.this.insert(name, ty);
        }
    }
    Ok(())
}

/// Every assignment in `e`, pre-order: (target, type of the value stored, key types).
fn assignments(typer: &Typer, e: &Expr) -> Vec<(Expr, Type, Vec<Type>)> {
    let mut found = Vec::new();
    ast::walk(e, &mut |x| {
        let (lhs, ty) = match &x.node {
            ExprKind::Assign { op: None, lhs, rhs } => (lhs, typer.ty(rhs)),
            ExprKind::Assign {
                op: Some(op),
                lhs,
                rhs,
            } => {
                let t = match op {
                    ast::BinOp::Shl | ast::BinOp::Shr => typer.ty(lhs),
                    _ => Type::arith(&typer.ty(lhs), &typer.ty(rhs)),
                };
                (lhs, t)
            }
            ExprKind::IncDec { expr, .. } => (expr, Type::INT),
            _ => return,
        };
        let keys = match &lhs.node {
            ExprKind::Index { index, .. } => index.iter().map(|k| typer.ty(k)).collect(),
            _ => Vec::new(),
        };
        found.push((lhs.clone(), ty, keys));
    });
    found
}

/// The type a variable gets from a value of type `t`: integers at least as wide as `int`; a
/// kernel object is kept as its address.
fn storable(t: Type) -> Type {
    match t {
        Type::Int { size, signed } if size < 4 => Type::Int { size: 4, signed },
        t if t.is_aggregate() => Type::LONG,
        t => t,
    }
}

/// Give `lhs` the type `ty` unless it has one; refine a vague one to a typed pointer.
fn assign(v: &mut VarTypes, lhs: &Expr, ty: Type, keys: Vec<Type>) {
    let ty = storable(ty);
    let slot = match &lhs.node {
        ExprKind::Ident(n) if !v.inlines.contains_key(n) && signatures::variable(n).is_none() => {
            v.globals.entry(n.clone()).or_insert_with(|| ty.clone())
        }
        ExprKind::SelfVar(n) => {
            &mut v
                .thread
                .entry(n.clone())
                .or_insert_with(|| (Vec::new(), ty.clone()))
                .1
        }
        ExprKind::ThisVar(n) => v.this.entry(n.clone()).or_insert_with(|| ty.clone()),
        ExprKind::Index { base, .. } => match &base.node {
            ExprKind::Ident(n) if n != "args" && n != "uregs" => {
                &mut v
                    .assocs
                    .entry(n.clone())
                    .or_insert_with(|| (keys, ty.clone()))
                    .1
            }
            ExprKind::SelfVar(n) => {
                &mut v
                    .thread
                    .entry(n.clone())
                    .or_insert_with(|| (keys, ty.clone()))
                    .1
            }
            _ => return,
        },
        _ => return,
    };
    refine(slot, &ty);
}

/// A variable typed as an integer or `void *` takes the more precise pointer type of a value
/// stored into it (`this->t = curthread`, `self->f = args[0]`). Its size (8) does not change.
fn refine(slot: &mut Type, ty: &Type) {
    let Type::Ptr(pointee) = ty else { return };
    if **pointee == Type::Void {
        return;
    }
    let vague = *slot == Type::LONG
        || *slot == Type::ULONG
        || matches!(slot, Type::Ptr(p) if **p == Type::Void);
    if vague {
        *slot = ty.clone();
    }
}

fn collect_exprs<'a>(body: &'a [Stmt], out: &mut Vec<&'a Expr>) {
    for s in body {
        match s {
            Stmt::Expr(e) => out.push(e),
            Stmt::If {
                cond, then, els, ..
            } => {
                out.push(cond);
                collect_exprs(then, out);
                collect_exprs(els, out);
            }
            _ => {}
        }
    }
}
