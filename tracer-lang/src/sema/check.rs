//! Errors sema reports before lowering, at the place of the mistake:
//! - every call of a subroutine, action or aggregating function has as many arguments as its
//!   signature allows ([`script`]);
//! - typed, per statement and probe ([`typed`]): subroutine arguments of the class the
//!   signature asks for, `?:` branches both strings or both integers, no string stored into
//!   an integer variable or the reverse, no string tested for truth ([`condition`] for
//!   predicates and `if` conditions); kernel struct members that exist, casts that can be,
//!   `args[i]` with one constant index the probe has, associative array keys of the number
//!   and class the array was declared with.

use super::resolve::resolve_type;
use super::signatures::{self, Arg};
use super::typeck::Typer;
use crate::diag::{CompileError, Result};
use crate::syntax::ast::{self, BinOp, Expr, ExprKind, Item, Stmt, UnOp};
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
            Stmt::Expr(e) => {
                action_arity(e)?;
                expr(e)?
            }
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

/// An action statement's arity, checked before its arguments (as lowering evaluates them).
fn action_arity(e: &Expr) -> Result<()> {
    let ExprKind::Call { func, args } = &e.node else {
        return Ok(());
    };
    let Some(a) = signatures::action(&func.node) else {
        return Ok(());
    };
    let format_first = matches!(args.first().map(|a| &a.node), Some(ExprKind::Str(_)));
    match a.arity_error(args.len(), format_first) {
        Some(m) => Err(CompileError::new(e.span, m)),
        None => Ok(()),
    }
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
        // An aggregation's function is checked before its keys are evaluated.
        if let ExprKind::Aggregate { func, args, .. } = &x.node {
            if let Some(m) = signatures::aggregation_error(&func.node, args.len()) {
                first = Some(CompileError::new(func.span, m));
            }
        }
    });
    first.map_or(Ok(()), Err)
}

/// The type errors of statement (or predicate) `e` for the probe `typer` types against, in
/// the order lowering evaluates it. A statement with a name sema cannot resolve is left to
/// lowering, which reports that name first, as it always did.
pub fn typed(typer: &Typer, e: &Expr) -> Result<()> {
    if let ExprKind::Call { func, args } = &e.node {
        if let Some(args) = evaluated_action_args(&func.node, args) {
            // An action that evaluates its arguments first, in order.
            for a in args {
                match first_problem(typer, a) {
                    Some(Problem::Error(err)) => return Err(err),
                    Some(Problem::Unresolved) => return Ok(()),
                    None => {}
                }
            }
        }
        if let Some(action) = signatures::action(&func.node).filter(|a| !a.args.is_empty()) {
            // An action with argument classes: its arguments in order, up to the first that
            // lowering must resolve. (Others check their own conditions before evaluating
            // their arguments, and are left to lowering.)
            for (i, a) in args.iter().enumerate() {
                if !typer.resolves(a) {
                    return Ok(());
                }
                check_typed(typer, a)?;
                if typer.ty(a) == Type::Str {
                    if let Some(m) = action.class_error(i) {
                        return Err(CompileError::new(a.span, m));
                    }
                }
            }
            return Ok(());
        }
    }
    match first_problem(typer, e) {
        Some(Problem::Error(err)) => return Err(err),
        Some(Problem::Unresolved) => return Ok(()),
        None => {}
    }
    if !typer.resolves(e) {
        return Ok(());
    }
    check_typed(typer, e)
}

/// The type errors of a predicate or an `if` condition, as [`typed`], and a string tested
/// for truth where lowering branches on the condition.
pub fn condition(typer: &Typer, e: &Expr) -> Result<()> {
    match first_problem(typer, e) {
        Some(Problem::Error(err)) => return Err(err),
        Some(Problem::Unresolved) => return Ok(()),
        None => {}
    }
    if !typer.resolves(e) {
        return Ok(());
    }
    check_condition(typer, e)
}

/// A condition in the shape lowering branches on it: `!`, `&&` and `||` become branches,
/// comparisons compare (strings too), anything else is tested for truth.
fn check_condition(t: &Typer, e: &Expr) -> Result<()> {
    match &e.node {
        ExprKind::Unary {
            op: UnOp::Not,
            expr,
        } => check_condition(t, expr),
        ExprKind::Binary {
            op: BinOp::LogAnd | BinOp::LogOr,
            lhs,
            rhs,
        } => {
            check_condition(t, lhs)?;
            check_condition(t, rhs)
        }
        ExprKind::Binary {
            op: BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge,
            lhs,
            rhs,
        } => {
            check_typed(t, lhs)?;
            check_typed(t, rhs)
        }
        _ => {
            check_typed(t, e)?;
            scalar(t, e)
        }
    }
}

/// A value tested for truth must not be a string.
fn scalar(t: &Typer, e: &Expr) -> Result<()> {
    if t.ty(e) == Type::Str {
        return Err(CompileError::new(
            e.span,
            "a predicate must be a scalar, not a string (compare it with == or use strlen())",
        ));
    }
    Ok(())
}

/// The arguments of action `name` that lowering evaluates before checking anything else.
fn evaluated_action_args<'e>(name: &str, args: &'e [Expr]) -> Option<&'e [Expr]> {
    match name {
        "trace" | "exit" | "commit" | "discard" => Some(args),
        "printf" if matches!(args.first().map(|a| &a.node), Some(ExprKind::Str(_))) => {
            Some(&args[1..])
        }
        _ => None,
    }
}

/// What stops sema in an expression: an error it reports, or a name it leaves to lowering.
enum Problem {
    Error(CompileError),
    Unresolved,
}

/// The first problem in `e`, in the order lowering evaluates it: a member a kernel struct
/// does not have, a cast to an unknown type, to a struct or array, or of a string to an
/// integer; or the first name sema cannot type.
fn first_problem(t: &Typer, e: &Expr) -> Option<Problem> {
    // Nodes lowering checks before evaluating their children.
    match &e.node {
        ExprKind::Index { base, index } if matches!(&base.node, ExprKind::Ident(n) if n == "args") =>
        {
            let err = |span, m: String| Some(Problem::Error(CompileError::new(span, m)));
            return match index.as_slice() {
                [i] => match (&i.node, t.probe) {
                    (ExprKind::Int { value, .. }, Some(p)) if t.arg_out_of_range(*value as u32) => {
                        let n = *value as u32;
                        err(
                            e.span,
                            format!("index {n} is out of range for {} args[ ]", p.full_name()),
                        )
                    }
                    (ExprKind::Int { .. }, _) => Some(Problem::Unresolved),
                    _ => err(i.span, "args[] needs a constant index".into()),
                },
                _ => err(e.span, "args[] takes one index".into()),
            };
        }
        // sizeof does not evaluate its operand.
        ExprKind::SizeofExpr(_) => return None,
        ExprKind::Cast { ty, .. } => {
            if let Err(err) = resolve_type(t.kernel, ty) {
                return Some(Problem::Error(err));
            }
        }
        ExprKind::Call { .. }
        | ExprKind::Aggregate { .. }
        | ExprKind::AggRef(_)
        | ExprKind::Offsetof { .. }
        | ExprKind::SizeofType(_)
        | ExprKind::Unary {
            op: UnOp::AddrOf, ..
        } if !t.node_resolves(e) => return Some(Problem::Unresolved),
        _ => {}
    }
    let order: Vec<&Expr> = match &e.node {
        ExprKind::Assign { op: None, lhs, rhs } => match &lhs.node {
            ExprKind::Index { index, .. } => std::iter::once(rhs).chain(index).collect(),
            _ => vec![rhs],
        },
        _ => children(e),
    };
    for c in order {
        if let Some(p) = first_problem(t, c) {
            return Some(p);
        }
    }
    match &e.node {
        ExprKind::Member {
            base,
            member,
            arrow,
        } => {
            if let Some(m) = t.member_error(base, member, *arrow) {
                return Some(Problem::Error(CompileError::new(e.span, m)));
            }
        }
        ExprKind::Cast { ty, expr } => {
            let to = resolve_type(t.kernel, ty).ok()?;
            if to.is_aggregate() {
                return Some(Problem::Error(CompileError::new(
                    e.span,
                    format!("cannot cast to {to}; cast to a pointer ({to} *) instead"),
                )));
            }
            if t.ty(expr) == Type::Str && !matches!(to, Type::Ptr(_) | Type::Str) {
                return Some(Problem::Error(CompileError::new(
                    e.span,
                    format!("cannot cast a string to {to}"),
                )));
            }
            return None;
        }
        _ => {}
    }
    (!t.node_resolves(e)).then_some(Problem::Unresolved)
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
        ExprKind::Unary {
            op: UnOp::Not,
            expr,
        } => {
            check_typed(t, expr)?;
            scalar(t, expr)
        }
        ExprKind::Binary {
            op: BinOp::LogAnd | BinOp::LogOr,
            lhs,
            rhs,
        } => {
            check_typed(t, lhs)?;
            scalar(t, lhs)?;
            check_typed(t, rhs)?;
            scalar(t, rhs)
        }
        ExprKind::Index { base, index } if dynamic_keys(t, e, base, index)? => Ok(()),
        ExprKind::Cond { cond, then, els } => {
            check_typed(t, cond)?;
            scalar(t, cond)?;
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
            if let ExprKind::Index { base, index } = &lhs.node {
                if !dynamic_keys(t, lhs, base, index)? {
                    for k in index {
                        check_typed(t, k)?;
                    }
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

/// The keys of an associative array or thread-local array `base[index]`: as many as it has,
/// each checked, then each of its key's class. False when `base` is no such variable.
fn dynamic_keys(t: &Typer, e: &Expr, base: &Expr, index: &[Expr]) -> Result<bool> {
    if t.indexes_memory(base) {
        return Ok(false);
    }
    let types = match &base.node {
        ExprKind::Ident(n) if n != "args" && n != "uregs" => t.vars.assocs.get(n).map(|d| &d.0),
        ExprKind::SelfVar(n) => t.vars.thread.get(n).map(|d| &d.0),
        _ => None,
    };
    let Some(types) = types else {
        return Ok(false);
    };
    if types.len() != index.len() {
        return Err(CompileError::new(
            e.span,
            format!("expected {} key(s), found {}", types.len(), index.len()),
        ));
    }
    for k in index {
        check_typed(t, k)?;
    }
    for (k, ty) in index.iter().zip(types) {
        let ok = if t.ty(k) == Type::Str {
            *ty == Type::Str
        } else {
            ty.is_int()
        };
        if !ok {
            return Err(CompileError::new(
                k.span,
                format!("key has the wrong type: expected {ty}"),
            ));
        }
    }
    Ok(true)
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
