//! The D language front end: syntax (lalrpop), semantic checks, and lowering to the IR of
//! `tracer-ebpf`.

pub mod syntax;
