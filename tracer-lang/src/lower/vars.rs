//! Variables: where each lives and what type it has.
//!
//! - global scalars: at fixed offsets in the one-entry `globals` array map;
//! - associative arrays and thread-locals: one hash map each (thread-locals keyed by tid
//!   first), so a store of 0 deletes the entry, as DTrace frees dynamic variables;
//! - clause-locals (`this->`): at fixed offsets at the start of the per-CPU scratch value.
//!
//! Types come from declarations, or else from the first assignment in the script, as in D.

use super::{CompileError, Globals, MapSpec, Result};
use crate::syntax::ast::{self, ExprKind, Item, Stmt, Storage};
use crate::types::Type;
use std::collections::BTreeMap;
use tracer_ebpf::insn::map_type;
use tracer_ebpf::ir::MapId;

/// Offset in the globals value of the run state: `RUN_BEFORE_BEGIN` until the runtime has
/// fired BEGIN (so no probe fires before BEGIN), then `RUN_ACTIVE`, then `RUN_EXITING` once
/// `exit()` ran (every probe but END returns at once, as DTrace stops its ECBs when it
/// starts draining). Probes other than BEGIN and END run only while it is `RUN_ACTIVE`.
pub const EXIT_FLAG: u32 = 0;
pub const RUN_ACTIVE: i64 = tracer_common::script::RUN_ACTIVE as i64;
pub const RUN_EXITING: i64 = tracer_common::script::RUN_EXITING as i64;

#[derive(Debug, Clone)]
pub struct Scalar {
    pub ty: Type,
    pub offset: u32,
}

#[derive(Debug, Clone)]
pub struct Dynamic {
    pub keys: Vec<Type>,
    pub value: Type,
    pub map: Option<MapId>,
    pub key_size: u32,
}

#[derive(Debug, Default, Clone)]
pub struct VarTable {
    pub globals: BTreeMap<String, Scalar>,
    globals_size: u32,
    pub assocs: BTreeMap<String, Dynamic>,
    /// Thread-locals; `keys` are the extra tuple keys of `self->a[k]`.
    pub thread: BTreeMap<String, Dynamic>,
    pub this: BTreeMap<String, Scalar>,
    this_size: u32,
}

impl VarTable {
    pub fn globals_size(&self) -> u32 {
        self.globals_size
    }
    pub fn this_size(&self) -> u32 {
        self.this_size
    }
}

/// Size of a tuple key: each element padded to 8 bytes; at least 8.
pub fn key_size(keys: &[Type], strsize: u32) -> u32 {
    let s: u32 = keys
        .iter()
        .map(|k| k.storage_size(strsize).div_ceil(8) * 8)
        .sum();
    s.max(8)
}

/// Collect declarations and infer the type of every variable from its first assignment.
pub(crate) fn declare_all(
    g: &mut Globals,
    script: &ast::Script,
    clauses: &[&ast::Clause],
) -> Result<()> {
    let strsize = g.opts.strsize;
    let kernel = g.input.kernel_types;
    let mut globals: BTreeMap<String, Type> = BTreeMap::new();
    let mut assocs: BTreeMap<String, (Vec<Type>, Type)> = BTreeMap::new();
    let mut thread: BTreeMap<String, (Vec<Type>, Type)> = BTreeMap::new();
    let mut this: BTreeMap<String, Type> = BTreeMap::new();
    let decl = |d: &ast::Decl,
                globals: &mut BTreeMap<String, Type>,
                assocs: &mut BTreeMap<String, (Vec<Type>, Type)>,
                thread: &mut BTreeMap<String, (Vec<Type>, Type)>,
                this: &mut BTreeMap<String, Type>|
     -> Result<()> {
        let ty = crate::sema::resolve::resolve_type(kernel, &d.ty)?;
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
                .map(|k| crate::sema::resolve::resolve_type(kernel, k))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        match d.storage {
            Storage::Global if d.keys.is_some() => {
                assocs.insert(name, (keys, ty));
            }
            Storage::Global => {
                globals.insert(name, ty);
            }
            Storage::Thread => {
                thread.insert(name, (keys, ty));
            }
            Storage::Clause => {
                this.insert(name, ty);
            }
        }
        Ok(())
    };
    for item in &script.items {
        match item {
            Item::Decl(d) => decl(d, &mut globals, &mut assocs, &mut thread, &mut this)?,
            Item::Inline {
                ty,
                name,
                value,
                span,
            } => {
                let t = Type::from_name(&ty.base, ty.pointers).ok_or_else(|| {
                    CompileError::new(*span, format!("unknown type `{}`", ty.base))
                })?;
                g.inlines.insert(name.node.clone(), (value.clone(), t));
            }
            _ => {}
        }
    }
    for c in clauses {
        for s in &c.body {
            if let Stmt::Decl(d) = s {
                decl(d, &mut globals, &mut assocs, &mut thread, &mut this)?;
            }
        }
    }
    // Infer from assignments, in script order; two rounds so `x = y` sees y's type.
    for _round in 0..2 {
        for c in clauses {
            let mut stmts: Vec<&ast::Expr> = Vec::new();
            collect_exprs(&c.body, &mut stmts);
            if let Some(p) = &c.predicate {
                stmts.push(p);
            }
            for e in stmts {
                // Gather (lhs, value type, key types) with the current environment, then apply.
                let mut found: Vec<(ast::Expr, Type, Vec<Type>)> = Vec::new();
                visit_assignments(
                    e,
                    &mut |lhs, rhs_ty| {
                        let keys = match &lhs.node {
                            ExprKind::Index { index, .. } => index
                                .iter()
                                .map(|k| static_type(k, &globals, &this, &thread, &assocs))
                                .collect(),
                            _ => Vec::new(),
                        };
                        if let Some(t) = rhs_ty {
                            found.push((lhs.clone(), widen_int(t), keys));
                        }
                    },
                    &globals,
                    &this,
                    &thread,
                    &assocs,
                );
                for (lhs, ty, key_types) in found {
                    match &lhs.node {
                        ExprKind::Ident(n)
                            if !g.inlines.contains_key(n)
                                && crate::sema::signatures::variable(n).is_none() =>
                        {
                            globals.entry(n.clone()).or_insert(ty);
                        }
                        ExprKind::SelfVar(n) => {
                            thread.entry(n.clone()).or_insert((Vec::new(), ty));
                        }
                        ExprKind::ThisVar(n) => {
                            this.entry(n.clone()).or_insert(ty);
                        }
                        ExprKind::Index { base, .. } => match &base.node {
                            ExprKind::Ident(n) if n != "args" && n != "uregs" => {
                                assocs.entry(n.clone()).or_insert((key_types, ty));
                            }
                            ExprKind::SelfVar(n) => {
                                thread.entry(n.clone()).or_insert((key_types, ty));
                            }
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
        }
    }
    // Lay out scalars after the exit flag (see `EXIT_FLAG`).
    let mut off = EXIT_FLAG + 8;
    for (name, ty) in globals {
        let size = ty.storage_size(strsize).div_ceil(8) * 8;
        g.vars.globals.insert(name, Scalar { ty, offset: off });
        off += size;
    }
    g.vars.globals_size = off;
    let mut off = 0;
    for (name, ty) in this {
        let size = ty.storage_size(strsize).div_ceil(8) * 8;
        g.vars.this.insert(name, Scalar { ty, offset: off });
        off += size;
    }
    g.vars.this_size = off;
    // One hash map per dynamic variable; thread-locals are keyed by tid first.
    for (name, (keys, value)) in assocs {
        let d = dynamic(g, &format!("a_{name}"), keys, value, false);
        g.vars.assocs.insert(name, d);
    }
    for (name, (keys, value)) in thread {
        let d = dynamic(g, &format!("t_{name}"), keys, value, true);
        g.vars.thread.insert(name, d);
    }
    Ok(())
}

/// Declare the hash map behind a dynamic variable, sized from `dynvarsize`.
fn dynamic(g: &mut Globals, map: &str, keys: Vec<Type>, value: Type, by_thread: bool) -> Dynamic {
    let strsize = g.opts.strsize;
    let mut all = if by_thread {
        vec![Type::ULONG]
    } else {
        Vec::new()
    };
    all.extend(keys.iter().cloned());
    let ks = key_size(&all, strsize);
    let vs = value.storage_size(strsize).div_ceil(8) * 8;
    let max = (g.opts.dynvarsize / (ks + vs + 64) as u64).clamp(1, 1 << 20) as u32;
    let map = g.add_map(MapSpec {
        name: map.into(),
        map_type: map_type::HASH,
        key_size: ks,
        value_size: vs.max(8),
        max_entries: max,
    });
    Dynamic {
        keys,
        value,
        map: Some(map),
        key_size: ks,
    }
}

/// D stores integer variables at least as wide as `int`.
fn widen_int(t: Type) -> Type {
    match t {
        Type::Int { size, signed } if size < 4 => Type::Int { size: 4, signed },
        t => t,
    }
}

fn collect_exprs<'a>(body: &'a [Stmt], out: &mut Vec<&'a ast::Expr>) {
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

type Env<'a> = (
    &'a BTreeMap<String, Type>,
    &'a BTreeMap<String, Type>,
    &'a BTreeMap<String, (Vec<Type>, Type)>,
    &'a BTreeMap<String, (Vec<Type>, Type)>,
);

fn visit_assignments(
    e: &ast::Expr,
    f: &mut dyn FnMut(&ast::Expr, Option<Type>),
    globals: &BTreeMap<String, Type>,
    this: &BTreeMap<String, Type>,
    thread: &BTreeMap<String, (Vec<Type>, Type)>,
    assocs: &BTreeMap<String, (Vec<Type>, Type)>,
) {
    let env: Env = (globals, this, thread, assocs);
    walk(e, &mut |x| match &x.node {
        ExprKind::Assign { op: None, lhs, rhs } => {
            f(lhs, Some(static_type(rhs, env.0, env.1, env.2, env.3)))
        }
        ExprKind::Assign {
            op: Some(_),
            lhs,
            rhs,
        } => f(
            lhs,
            Some(widen_int(static_type(rhs, env.0, env.1, env.2, env.3))),
        ),
        ExprKind::IncDec { expr, .. } => f(expr, Some(Type::INT)),
        _ => {}
    });
}

/// Pre-order walk over an expression tree.
pub(crate) fn walk(e: &ast::Expr, f: &mut dyn FnMut(&ast::Expr)) {
    f(e);
    match &e.node {
        ExprKind::Index { base, index } => {
            walk(base, f);
            index.iter().for_each(|i| walk(i, f));
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(a, f)),
        ExprKind::Member { base, .. } => walk(base, f),
        ExprKind::Unary { expr, .. }
        | ExprKind::IncDec { expr, .. }
        | ExprKind::Cast { expr, .. } => walk(expr, f),
        ExprKind::SizeofExpr(x) | ExprKind::Stringof(x) => walk(x, f),
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Assign { lhs, rhs, .. } => {
            walk(lhs, f);
            walk(rhs, f);
        }
        ExprKind::Cond { cond, then, els } => {
            walk(cond, f);
            walk(then, f);
            walk(els, f);
        }
        ExprKind::Aggregate { keys, args, .. } => {
            keys.iter().for_each(|k| walk(k, f));
            args.iter().for_each(|a| walk(a, f));
        }
        _ => {}
    }
}

/// The type of an expression without generating code (for inference before lowering).
pub(crate) fn static_type(
    e: &ast::Expr,
    globals: &BTreeMap<String, Type>,
    this: &BTreeMap<String, Type>,
    thread: &BTreeMap<String, (Vec<Type>, Type)>,
    assocs: &BTreeMap<String, (Vec<Type>, Type)>,
) -> Type {
    let st = |x: &ast::Expr| static_type(x, globals, this, thread, assocs);
    match &e.node {
        ExprKind::Int { value, suffix } => crate::sema::literals::int_literal_type(*value, suffix),
        ExprKind::Char(_) => Type::Int {
            size: 1,
            signed: true,
        },
        ExprKind::Str(_) | ExprKind::MacroStr(_) | ExprKind::Stringof(_) => Type::Str,
        ExprKind::Macro(_) => Type::LONG,
        ExprKind::Ident(n) => {
            if let Some(t) = crate::sema::signatures::variable(n) {
                t
            } else {
                globals.get(n).cloned().unwrap_or(Type::LONG)
            }
        }
        ExprKind::SelfVar(n) => thread.get(n).map(|t| t.1.clone()).unwrap_or(Type::LONG),
        ExprKind::ThisVar(n) => this.get(n).cloned().unwrap_or(Type::LONG),
        ExprKind::Index { base, .. } => match &base.node {
            ExprKind::Ident(n) if n == "args" => Type::LONG,
            ExprKind::Ident(n) => assocs.get(n).map(|t| t.1.clone()).unwrap_or(Type::LONG),
            ExprKind::SelfVar(n) => thread.get(n).map(|t| t.1.clone()).unwrap_or(Type::LONG),
            _ => Type::LONG,
        },
        ExprKind::Call { func, .. } => {
            crate::sema::signatures::subroutine(&func.node).map_or(Type::LONG, |s| s.result())
        }
        ExprKind::Unary {
            op: ast::UnOp::Not, ..
        } => Type::INT,
        ExprKind::Unary {
            op: ast::UnOp::Deref,
            expr,
        } => match st(expr) {
            Type::Ptr(t) => *t,
            _ => Type::LONG,
        },
        ExprKind::Unary { expr, .. } => st(expr),
        ExprKind::Binary { op, lhs, rhs } => {
            use ast::BinOp::*;
            match op {
                Eq | Ne | Lt | Le | Gt | Ge | LogAnd | LogOr | LogXor => Type::INT,
                Comma => st(rhs),
                Shl | Shr => widen_int(st(lhs)),
                _ => Type::arith(&st(lhs), &st(rhs)),
            }
        }
        ExprKind::Cond { then, .. } => st(then),
        ExprKind::Assign { lhs, .. } => st(lhs),
        ExprKind::IncDec { expr, .. } => st(expr),
        ExprKind::Cast { ty, .. } => Type::from_name(&ty.base, ty.pointers).unwrap_or(Type::LONG),
        ExprKind::SizeofType(_) | ExprKind::SizeofExpr(_) | ExprKind::Offsetof { .. } => {
            Type::ULONG
        }
        ExprKind::Member { .. } => Type::LONG,
        ExprKind::AggRef(_) | ExprKind::Aggregate { .. } => Type::Void,
    }
}

impl VarTable {
    /// Give a variable inferred as an integer or `void *` the more precise pointer type of a
    /// value stored into it (`this->t = curthread`, `self->f = args[0]`), so that members
    /// can be reached through it. The size (8 bytes) does not change.
    pub(crate) fn refine_pointer(&mut self, lhs: &ast::Expr, ty: &Type) {
        let Type::Ptr(pointee) = ty else { return };
        if **pointee == Type::Void {
            return;
        }
        let slot = match &lhs.node {
            ExprKind::Ident(n) => self.globals.get_mut(n).map(|s| &mut s.ty),
            ExprKind::ThisVar(n) => self.this.get_mut(n).map(|s| &mut s.ty),
            ExprKind::SelfVar(n) => self.thread.get_mut(n).map(|d| &mut d.value),
            ExprKind::Index { base, .. } => match &base.node {
                ExprKind::Ident(n) => self.assocs.get_mut(n).map(|d| &mut d.value),
                ExprKind::SelfVar(n) => self.thread.get_mut(n).map(|d| &mut d.value),
                _ => None,
            },
            _ => None,
        };
        if let Some(t) = slot {
            let vague = *t == Type::LONG
                || *t == Type::ULONG
                || matches!(t, Type::Ptr(p) if **p == Type::Void);
            if vague {
                *t = ty.clone();
            }
        }
    }
}
