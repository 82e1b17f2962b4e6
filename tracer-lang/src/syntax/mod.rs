//! Lexing and parsing D into the [`ast`].

pub mod ast;
