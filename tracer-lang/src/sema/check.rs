//! Checks sema reports before lowering, at the place of the mistake: every call of a
//! subroutine has as many arguments as its signature allows.

use super::signatures;
use crate::diag::{CompileError, Result};
use crate::syntax::ast::{self, Expr, ExprKind, Item, Stmt};

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
