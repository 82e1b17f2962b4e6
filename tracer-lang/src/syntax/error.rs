//! Turning lalrpop parse errors into [`Diagnostic`]s worded for users.

use super::ast::Span;
use super::lexer::{BraceKind, Lexer};
use super::token::Tok;
use crate::diag::Diagnostic;
use lalrpop_util::ParseError;

/// Terminals that continue an expression; they are left out of "expected ..." lists when
/// something more telling remains.
const CONTINUATIONS: &[&str] = &[
    "+", "-", "*", "/", "%", "<<", ">>", "<", "<=", ">", ">=", "==", "!=", "&", "|", "^", "&&",
    "||", "^^", "?", "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ".", "->",
    "++", "--", "[", "(", ",",
];

pub fn convert(
    err: ParseError<usize, Tok, Diagnostic>,
    lexer: &Lexer,
    file: u32,
    src: &str,
) -> Diagnostic {
    let span = |l: usize, r: usize| Span::new(file, l, r);
    match err {
        ParseError::User { error } => error,
        ParseError::InvalidToken { location } => {
            Diagnostic::error(span(location, location + 1), "invalid token")
                .with_label("not valid in D")
        }
        ParseError::ExtraToken { token: (l, _, r) } => {
            Diagnostic::error(span(l, r), format!("unexpected {}", show(src, l, r)))
                .with_label("unexpected token")
        }
        ParseError::UnrecognizedEof { location, expected } => {
            if let Some(&(kind, at)) = lexer.braces.last() {
                let what = match kind {
                    BraceKind::Clause => "clause",
                    BraceKind::Block => "block",
                };
                return Diagnostic::error(
                    span(at, at + 1),
                    format!(
                        "unexpected end of input: missing `}}` closing the {what} that starts here"
                    ),
                )
                .with_label("this `{` is never closed");
            }
            let what = expected_text(&expected);
            Diagnostic::error(
                span(location, location),
                format!("unexpected end of input; expected {what}"),
            )
            .with_label(format!("expected {what}"))
        }
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let has = |t: &str| expected.iter().any(|e| e == t);
            if has("\";\"") && starts_expression(&tok) && lexer.in_clause_body() {
                let at = lexer.ends[0];
                return Diagnostic::error(span(at, at), "missing `;` between statements")
                    .with_label(format!("expected `;` before {}", show(src, l, r)));
            }
            let what = expected_text(&expected);
            Diagnostic::error(
                span(l, r),
                format!("unexpected {}; expected {what}", show(src, l, r)),
            )
            .with_label(format!("expected {what}"))
        }
    }
}

/// The found token as the user wrote it, in backticks.
fn show(src: &str, l: usize, r: usize) -> String {
    let text = src.get(l..r).unwrap_or("");
    let text = text.lines().next().unwrap_or("");
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("`{cut}...`")
    } else {
        format!("`{text}`")
    }
}

fn starts_expression(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::Ident(_)
            | Tok::Int(_)
            | Tok::Str(_)
            | Tok::Char(_)
            | Tok::Macro(_)
            | Tok::MacroStr(_)
            | Tok::AggRef(_)
            | Tok::SelfKw
            | Tok::This
            | Tok::Sizeof
            | Tok::Stringof
            | Tok::Offsetof
            | Tok::If
            | Tok::TypeName(_)
            | Tok::Bang
            | Tok::Tilde
            | Tok::PlusPlus
            | Tok::MinusMinus
    )
}

/// Summarises lalrpop's list of expected terminals in words.
fn expected_text(expected: &[String]) -> String {
    let has = |t: &str| expected.iter().any(|e| e == t);
    if has("IntLit") {
        return if has("\"}\"") {
            "a statement or `}`".into()
        } else {
            "an expression".into()
        };
    }
    if has("ProbeTok") {
        return if has("TypeTok") {
            "a probe description or a declaration".into()
        } else {
            "a probe description".into()
        };
    }
    let unquote = |e: &String| {
        e.strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .map(str::to_string)
    };
    let continuation = |e: &String| {
        e == "StrLit" || unquote(e).is_some_and(|t| CONTINUATIONS.contains(&t.as_str()))
    };
    // Operators that could continue an expression are noise next to what was really missing
    // (`(1 + 2;` expects `)`); drop them when the parser was in an expression. `,` and `[`
    // (more items, an array suffix) are always secondary.
    let in_expression = has("\"+\"");
    let significant: Vec<&String> = expected
        .iter()
        .filter(|e| {
            let secondary = matches!(e.as_str(), "\",\"" | "\"[\"");
            let noise = in_expression && continuation(e);
            !(secondary || noise)
        })
        .collect();
    let mut list: Vec<&String> = if significant.is_empty() {
        expected.iter().collect()
    } else {
        significant
    };
    // `struct`, `union` and `enum` go with type names; type names after `.`/`->` are just
    // identifiers to the user.
    if has("TypeTok") {
        list.retain(|e| !matches!(e.as_str(), "\"struct\"" | "\"union\"" | "\"enum\""));
        if has("Ident") {
            list.retain(|e| e.as_str() != "TypeTok");
        }
    }
    let mut words: Vec<String> = Vec::new();
    for e in list {
        let w = match unquote(e) {
            Some(t) => format!("`{t}`"),
            None => describe(e).to_string(),
        };
        if !words.contains(&w) {
            words.push(w);
        }
    }
    match words.len() {
        0 => "something else".into(),
        1 => words.remove(0),
        n if n <= 4 => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
        _ => format!("{}, or another token", words[..4].join(", ")),
    }
}

fn describe(terminal: &str) -> &str {
    match terminal {
        "ProbeTok" => "a probe description",
        "Ident" => "an identifier",
        "TypeTok" => "a type",
        "IntLit" => "an integer",
        "StrLit" => "a string",
        "CharLit" => "a character constant",
        "MacroTok" | "MacroStrTok" => "a macro variable",
        "AggTok" => "an aggregation",
        "PragmaTok" => "`#pragma`",
        "PredOpen" => "`/`",
        "PredClose" => "`/` closing the predicate",
        other => other,
    }
}
