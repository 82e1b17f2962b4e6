//! Lexing and parsing D into the [`ast`].
//!
//! [`parse`] turns a whole script into an [`ast::Script`]; [`parse_expr`] parses a lone
//! expression (for tools and tests). The lexer is hand-written ([`lexer`]) because D needs
//! lexer states for probe descriptions and predicate delimiters; the grammar is lalrpop
//! (`grammar.lalrpop`).

pub mod ast;
mod error;
pub mod lexer;
mod literal;
mod mk;
pub mod token;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, unused_parens, dead_code)]
    grammar,
    "/syntax/grammar.rs"
);

use crate::diag::Diagnostic;

/// Parses the D script `src`; spans in the result and in the error refer to `file`.
pub fn parse(file: u32, src: &str) -> Result<ast::Script, Diagnostic> {
    let mut lexer = lexer::Lexer::new(file, src);
    let result = grammar::ScriptParser::new().parse(file, &mut lexer);
    result.map_err(|e| error::convert(e, &lexer, file, src))
}

/// Parses a single D expression (C tokens only, no probe descriptions).
pub fn parse_expr(file: u32, src: &str) -> Result<ast::Expr, Diagnostic> {
    let mut lexer = lexer::Lexer::new_expr(file, src);
    let result = grammar::ExprParser::new().parse(file, &mut lexer);
    result.map_err(|e| error::convert(e, &lexer, file, src))
}
