//! Errors sema reports before lowering, at the place of the mistake:
//! - every call of a subroutine has as many arguments as its signature allows ([`script`]);
//! - typed, per statement and probe ([`typed`]): subroutine arguments of the class the
//!   signature asks for, `?:` branches both strings or both integers, no string stored into
//!   an integer variable or the reverse.

use super::signatures::{self, Arg};
use super::typeck::Typer;
use crate::diag::{CompileError, Result};
use crate::syntax::ast::{self, Expr, ExprKind, Item, Stmt};
use crate::types::Type;

/// Check every expression of `script`: clause predicates and bodies, and inline values.
pub fn script(script: &ast::Script) -> Result<()> {
    for item in &script.items {
        match item {
            Item::Clause(c) => {
                if let Some(p) = &c.predicate {
                    expr(p)?;
                }
                stmts(&c.body)?;
            }
            Item::Inline { value, .. } => expr(value)?,
            _ => {}
        }
    }
    Ok(())
}

fn stmts(body: &[Stmt]) -> Result<()> {
    for s in body {
        match s {
            Stmt::Expr(e) => expr(e)?,
            Stmt::If {
                cond, then, els, ..
            } => {
                expr(cond)?;
                stmts(then)?;
                stmts(els)?;
            }
            Stmt::Decl(_) | Stmt::Empty => {}
        }
    }
    Ok(())
}

/// The first mistake in `e`, pre-order.
pub fn expr(e: &Expr) -> Result<()> {
    let mut first = None;
    ast::walk(e, &mut |x| {
        if first.is_some() {
            return;
        }
        if let ExprKind::Call { func, args } = &x.node {
            if let Some(m) =
                signatures::subroutine(&func.node).and_then(|s| s.arity_error(args.len()))
            {
                first = Some(CompileError::new(x.span, m));
            }
        }
    });
    first.map_or(Ok(()), Err)
}

/// The type errors of statement (or predicate) `e` for the probe `typer` types against, in
/// the order lowering evaluates it. A statement with a name sema cannot resolve is left to
/// lowering, which reports that name first, as it always did.
pub fn typed(typer: &Typer, e: &Expr) -> Result<()> {
    if !typer.resolves(e) {
        return Ok(());
    }
    check_typed(typer, e)
}

fn check_typed(t: &Typer, e: &Expr) -> Result<()> {
    match &e.node {
        ExprKind::Call { func, args } => {
            let classes = signatures::subroutine(&func.node).map_or(&[][..], |s| s.args);
            for (i, a) in args.iter().enumerate() {
                check_typed(t, a)?;
                let ty = t.ty(a);
                match classes.get(i) {
                    Some(Arg::Str) if ty != Type::Str => {
                        return Err(CompileError::new(a.span, "expected a string argument"))
                    }
                    Some(Arg::Int) if ty == Type::Str => {
                        return Err(CompileError::new(
                            a.span,
                            "operand must be an integer, not a string",
                        ))
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        ExprKind::Cond { cond, then, els } => {
            check_typed(t, cond)?;
            check_typed(t, then)?;
            check_typed(t, els)?;
            if (t.ty(then) == Type::Str) != (t.ty(els) == Type::Str) {
                return Err(CompileError::new(
                    e.span,
                    "both branches of ?: must be strings or both integers",
                ));
            }
            Ok(())
        }
        ExprKind::Assign { op: None, lhs, rhs } => {
            check_typed(t, rhs)?;
            if let ExprKind::Index { index, .. } = &lhs.node {
                for k in index {
                    check_typed(t, k)?;
                }
            }
            let value = t.ty(rhs);
            if let Some(var) = t.declared(lhs) {
                // An integer (0) stored into a dynamic string variable frees it.
                let dynamic = matches!(lhs.node, ExprKind::SelfVar(_) | ExprKind::Index { .. });
                let bad = if var == Type::Str {
                    value != Type::Str && !dynamic
                } else {
                    var.is_int() && value == Type::Str
                };
                if bad {
                    return Err(CompileError::new(
                        lhs.span,
                        format!("cannot assign a {value} to a variable of type {var}"),
                    ));
                }
            }
            Ok(())
        }
        _ => {
            for c in children(e) {
                check_typed(t, c)?;
            }
            Ok(())
        }
    }
}

/// The direct subexpressions of `e`, in the order lowering evaluates them.
fn children(e: &Expr) -> Vec<&Expr> {
    match &e.node {
        ExprKind::Index { base, index } => std::iter::once(base).chain(index).collect(),
        ExprKind::Call { args, .. } => args.iter().collect(),
        ExprKind::Member { base, .. } => vec![base],
        ExprKind::Unary { expr, .. }
        | ExprKind::IncDec { expr, .. }
        | ExprKind::Cast { expr, .. }
        | ExprKind::Stringof(expr) => vec![expr],
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Assign { lhs, rhs, .. } => vec![lhs, rhs],
        ExprKind::Cond { cond, then, els } => vec![cond, then, els],
        ExprKind::Aggregate { keys, args, .. } => keys.iter().chain(args).collect(),
        _ => Vec::new(),
    }
}
