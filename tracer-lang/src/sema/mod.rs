//! Semantic analysis: what the script's names and expressions mean, decided between syntax
//! and lowering.
//!
//! - [`signatures`]: the one table of built-in variables and subroutines (name, arity,
//!   argument classes, result type);
//! - [`literals`]: the types C gives literals, and macro-argument numbers;
//! - [`macros`]: what `$target`, `$pid`, `$1` stand for;
//! - [`resolve`]: type names as written (`int`, `struct task_struct *`), kernel types from BTF;
//! - [`check`]: errors sema reports before lowering (arity of subroutines, actions and
//!   aggregating functions; type errors of statements);
//! - [`formats`]: printf/printa formats against their arguments' types (tracer-format);
//! - [`typeck`]: the type of every expression, for the probe a clause is lowered for;
//! - [`vars`]: the type of every variable, decided before lowering.
//!
//! Lowering reads what this module decides and does not guess types of its own.

pub mod check;
pub mod formats;
pub mod literals;
pub mod macros;
pub mod resolve;
pub mod signatures;
pub mod typeck;
pub mod vars;
