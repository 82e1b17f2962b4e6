//! Small constructors used by the actions of `grammar.lalrpop`.

use super::ast::*;
use super::token::Tok;
use crate::diag::Diagnostic;
use lalrpop_util::ParseError;

pub type PError = ParseError<usize, Tok, Diagnostic>;

pub fn span(file: u32, l: usize, r: usize) -> Span {
    Span::new(file, l, r)
}

pub fn spanned<T>(file: u32, l: usize, node: T, r: usize) -> Spanned<T> {
    Spanned {
        node,
        span: span(file, l, r),
    }
}

pub fn expr(file: u32, l: usize, kind: ExprKind, r: usize) -> Expr {
    Box::new(spanned(file, l, kind, r))
}

/// `cond ? then : els`
pub fn cond(cond: Expr, then: Expr, els: Expr) -> Expr {
    let span = cond.span.to(els.span);
    Box::new(Spanned {
        node: ExprKind::Cond { cond, then, els },
        span,
    })
}

pub fn binary(lhs: Expr, op: BinOp, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Box::new(Spanned {
        node: ExprKind::Binary { op, lhs, rhs },
        span,
    })
}

/// `lhs op= rhs`; `@name[keys] = func(args)` becomes an [`ExprKind::Aggregate`].
pub fn assign(lhs: Expr, op: Option<BinOp>, op_span: Span, rhs: Expr) -> Result<Expr, PError> {
    let span = lhs.span.to(rhs.span);
    let agg = match &lhs.node {
        ExprKind::AggRef(name) => Some((
            Spanned {
                node: name.clone(),
                span: lhs.span,
            },
            Vec::new(),
        )),
        ExprKind::Index { base, index } => match &base.node {
            ExprKind::AggRef(name) => Some((
                Spanned {
                    node: name.clone(),
                    span: base.span,
                },
                index.clone(),
            )),
            _ => None,
        },
        _ => None,
    };
    let Some((name, keys)) = agg else {
        return Ok(Box::new(Spanned {
            node: ExprKind::Assign { op, lhs, rhs },
            span,
        }));
    };
    let bad = |span: Span, label: &str| {
        Err(ParseError::User {
            error: Diagnostic::error(
                span,
                "aggregations must be assigned an aggregating function such as count()",
            )
            .with_label(label)
            .with_note("for example `@counts[execname] = count();` or `@bytes = sum(arg2);`"),
        })
    };
    if let Some(op) = op {
        return bad(
            op_span,
            &format!("`{}=` cannot be used on an aggregation", op.symbol()),
        );
    }
    match rhs.node {
        ExprKind::Call { func, args } => Ok(Box::new(Spanned {
            node: ExprKind::Aggregate {
                name,
                keys,
                func,
                args,
            },
            span,
        })),
        _ => bad(rhs.span, "not an aggregating function call"),
    }
}

/// One declarator of a declaration: `*name[keys]`.
pub struct Declarator {
    pub stars: u32,
    /// End of the last `*` (or start of the name when there are none).
    pub stars_end: usize,
    pub name: Spanned<String>,
    pub suffix: Option<Suffix>,
    pub end: usize,
}

pub enum Suffix {
    Len(u64),
    Keys(Vec<TypeName>),
}

fn pointer_type(base: &TypeName, d: &Declarator) -> TypeName {
    let mut ty = base.clone();
    ty.pointers += d.stars;
    if d.stars > 0 {
        ty.span.end = ty.span.end.max(d.stars_end as u32);
    }
    ty
}

/// Expands `storage type d1, d2;` into one [`Decl`] per declarator.
pub fn decls(
    file: u32,
    l: usize,
    storage: Storage,
    base: TypeName,
    ds: Vec<Declarator>,
) -> Vec<Decl> {
    ds.into_iter()
        .map(|d| {
            let ty = pointer_type(&base, &d);
            let (keys, array_len) = match d.suffix {
                Some(Suffix::Keys(k)) => (Some(k), None),
                Some(Suffix::Len(n)) => (None, Some(n)),
                None => (None, None),
            };
            Decl {
                storage,
                ty,
                name: d.name,
                keys,
                array_len,
                span: span(file, l, d.end),
            }
        })
        .collect()
}

/// A struct or union member as [`TypeDef::Struct`] holds it: type, name, array length.
pub type Member = (TypeName, Spanned<String>, Option<u64>);

/// Struct or union members: `type d1, d2[4];`.
pub fn members(base: TypeName, ds: Vec<Declarator>) -> Result<Vec<Member>, PError> {
    ds.into_iter()
        .map(|d| {
            let ty = pointer_type(&base, &d);
            match d.suffix {
                None => Ok((ty, d.name, None)),
                Some(Suffix::Len(n)) => Ok((ty, d.name, Some(n))),
                Some(Suffix::Keys(_)) => Err(ParseError::User {
                    error: Diagnostic::error(
                        d.name.span,
                        "a struct member cannot be an associative array",
                    )
                    .with_label("member declared with key types"),
                }),
            }
        })
        .collect()
}

/// `typedef base declarator;`
pub fn typedef(base: &TypeName, d: Declarator) -> Result<Item, PError> {
    if d.suffix.is_some() {
        return Err(ParseError::User {
            error: Diagnostic::error(d.name.span, "array typedefs are not supported")
                .with_label("typedef of an array type"),
        });
    }
    Ok(Item::TypeDef(TypeDef::Typedef {
        ty: pointer_type(base, &d),
        name: d.name,
    }))
}

/// Checks that an array length fits; `[0]` is rejected.
pub fn array_len(file: u32, l: usize, v: u64, r: usize) -> Result<u64, PError> {
    if v == 0 {
        return Err(ParseError::User {
            error: Diagnostic::error(span(file, l, r), "array length must be at least 1")
                .with_label("zero-length array"),
        });
    }
    Ok(v)
}
