//! The D language front end: syntax (lalrpop), semantic analysis, and lowering to the IR of
//! `tracer-ebpf`.
//!
//! Pipeline: syntax ([`syntax::parse`]: D → AST) → sema ([`sema`]: built-in signatures,
//! literal and kernel types, the type of every expression and variable) → lower
//! ([`lower::compile`]: probe matching, scopes, IR) → `tracer_ebpf::emit` → ELF.

pub mod arch;
pub mod btf;
pub mod diag;
pub mod lower;
pub mod options;
pub mod probes;
pub mod sema;
pub mod syntax;
pub mod types;
