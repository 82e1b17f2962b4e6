//! The D abstract syntax tree, as the parser produces it. Every node carries its byte span in
//! the source it came from so that later passes can point at it.

use std::fmt;

/// A byte range in one source file (`Program::sources[file]`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl Span {
    pub fn new(file: u32, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

/// A whole script: top-level items in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Clause(Clause),
    /// `int x;`, `self int y;`, `this string z;`, `int a[string, int];`
    Decl(Decl),
    /// `inline type name = expr;`
    Inline {
        ty: TypeName,
        name: Spanned<String>,
        value: Expr,
        span: Span,
    },
    /// `#pragma D option name[=value]` (other pragmas are kept for diagnostics).
    Pragma {
        words: Vec<String>,
        span: Span,
    },
    /// `typedef`, `struct`, `union`, `enum` definitions.
    TypeDef(TypeDef),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// One or more probe descriptions (`syscall::read:entry, syscall::write:entry`).
    pub probes: Vec<Spanned<String>>,
    pub predicate: Option<Expr>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Global,
    /// `self`
    Thread,
    /// `this`
    Clause,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    pub storage: Storage,
    pub ty: TypeName,
    pub name: Spanned<String>,
    /// Key types of an associative array declaration `int a[string, int];`
    pub keys: Option<Vec<TypeName>>,
    /// `int a[5];` fixed-size array length.
    pub array_len: Option<u64>,
    pub span: Span,
}

/// A type as written: base name, pointer depth.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeName {
    /// Words as written, normalised to single spaces: `unsigned long long`, `string`,
    /// `struct task_struct`, `uint64_t`, `char`.
    pub base: String,
    /// Number of `*`.
    pub pointers: u32,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeDef {
    Typedef {
        ty: TypeName,
        name: Spanned<String>,
    },
    Struct {
        kind: StructKind,
        name: Spanned<String>,
        members: Vec<(TypeName, Spanned<String>, Option<u64>)>,
    },
    Enum {
        name: Option<Spanned<String>>,
        variants: Vec<(Spanned<String>, Option<Expr>)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructKind {
    Struct,
    Union,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// An expression statement, including assignments and action calls.
    Expr(Expr),
    /// `if (cond) { ... } else { ... }` (illumos D sugar).
    If {
        cond: Expr,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
        span: Span,
    },
    /// A declaration inside a clause: `this int x;`
    Decl(Decl),
    /// An empty statement `;`.
    Empty,
}

pub type Expr = Box<Spanned<ExprKind>>;

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Integer literal, with its C suffix (`u`, `l`, `ul`, `ll`, `ull`) lower-cased, or "".
    Int {
        value: u64,
        suffix: String,
    },
    /// String literal, escapes already decoded.
    Str(String),
    /// Character literal `'a'`.
    Char(u8),
    /// A bare identifier: a variable, a built-in (`pid`, `arg0`, `execname`), an inline or an
    /// enum constant. Resolution happens in semantic analysis.
    Ident(String),
    /// `$1`, `$target`, `$pid`: the part after `$`.
    Macro(String),
    /// `$$1`: the argument as a string.
    MacroStr(String),
    /// `self->name`
    SelfVar(String),
    /// `this->name`
    ThisVar(String),
    /// `@name` (name without `@`; empty for `@`), only as an argument of printa/clear/trunc/...
    AggRef(String),
    /// `base[i, j]`: associative array, `args[0]`, `uregs[R]`, or pointer/array index.
    Index {
        base: Expr,
        index: Vec<Expr>,
    },
    /// `f(a, b)`: an action, a subroutine or an aggregating function.
    Call {
        func: Spanned<String>,
        args: Vec<Expr>,
    },
    /// `a.b` or `a->b`
    Member {
        base: Expr,
        member: String,
        arrow: bool,
    },
    Unary {
        op: UnOp,
        expr: Expr,
    },
    Binary {
        op: BinOp,
        lhs: Expr,
        rhs: Expr,
    },
    /// `c ? a : b`
    Cond {
        cond: Expr,
        then: Expr,
        els: Expr,
    },
    /// `lhs = rhs`, `lhs += rhs`, ... (`op` is None for plain `=`)
    Assign {
        op: Option<BinOp>,
        lhs: Expr,
        rhs: Expr,
    },
    /// `@name[keys] = func(args)`: an aggregation.
    Aggregate {
        name: Spanned<String>,
        keys: Vec<Expr>,
        func: Spanned<String>,
        args: Vec<Expr>,
    },
    /// `++x`, `x++`, `--x`, `x--`
    IncDec {
        expr: Expr,
        inc: bool,
        prefix: bool,
    },
    /// `(type) expr`
    Cast {
        ty: TypeName,
        expr: Expr,
    },
    /// `sizeof(type)` or `sizeof expr`
    SizeofType(TypeName),
    SizeofExpr(Expr),
    /// `offsetof(type, member)`
    Offsetof {
        ty: TypeName,
        member: String,
    },
    /// `stringof(expr)` / `stringof expr`
    Stringof(Expr),
}

/// Pre-order walk over an expression tree.
pub fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
    BitNot,
    /// `*p`
    Deref,
    /// `&x`
    AddrOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    LogAnd,
    LogOr,
    LogXor,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `a, b` (comma operator)
    Comma,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::LogAnd => "&&",
            BinOp::LogOr => "||",
            BinOp::LogXor => "^^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Comma => ",",
        }
    }
}
