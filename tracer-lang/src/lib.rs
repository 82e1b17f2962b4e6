//! The D language front end: syntax (lalrpop), semantic checks, and lowering to the IR of
//! `tracer-ebpf`.
//!
//! Pipeline: [`syntax::parse`] → [`lower::compile`] (types, scopes, probe matching, IR) →
//! `tracer_ebpf::emit` → ELF.

pub mod arch;
pub mod btf;
pub mod diag;
pub mod lower;
pub mod options;
pub mod probes;
pub mod syntax;
pub mod types;
