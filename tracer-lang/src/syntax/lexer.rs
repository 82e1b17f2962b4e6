//! The hand-written D lexer.
//!
//! Like DTrace's own lexer it is stateful: at the top level (the start of an item, or after a
//! `,` in a list of probe descriptions) it reads a whole probe description such as
//! `syscall::open*:entry` or `uprobe:/bin/bash:readline` as one token; inside predicates and
//! clause bodies it reads C tokens. It also decides whether a `/` inside a predicate closes it
//! (when followed by `{`, `;` or the end of input) and classifies identifiers that name types
//! (built-in C types and typedefs declared so far) as [`Tok::TypeName`], which resolves the
//! `(type) expr` versus `(expr)` ambiguity for the parser.

use super::ast::Span;
use super::token::*;
use crate::diag::Diagnostic;
use std::collections::HashSet;

pub type Spanned = (usize, Tok, usize);
pub type LexResult = Result<Spanned, Diagnostic>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between items: a probe description or a declaration comes next.
    Program,
    /// After `,` in a probe description list.
    ExpectProbe,
    /// After a probe description: `,`, `/`, `{` or the next item.
    AfterProbe,
    /// Inside `/ ... /`.
    Predicate,
    /// After the predicate: `{` or the next item.
    AfterPred,
    /// Inside a clause body or a top-level declaration.
    Code,
}

/// What an open `{` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BraceKind {
    Clause,
    Block,
}

/// Tracks a `typedef` being lexed, to learn the new type name at its `;`.
struct TypedefTrack {
    depth: usize,
    last_ident: Option<String>,
}

pub struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) bytes: &'a [u8],
    file: u32,
    pub(super) pos: usize,
    mode: Mode,
    done: bool,
    /// Open braces: kind and byte offset of the `{`.
    pub braces: Vec<(BraceKind, usize)>,
    /// Offset of the `/` opening the current predicate, and open `(`/`[` inside it.
    pred_start: usize,
    pred_parens: Vec<(u8, usize)>,
    /// Typedef names declared so far.
    types: HashSet<String>,
    typedef: Option<TypedefTrack>,
    /// End offsets of the last two tokens returned (`[previous, last]`).
    pub ends: [usize; 2],
    /// Tokens since the last `;`, `{`, `}` or predicate delimiter (see [`MAX_STATEMENT_TOKENS`]).
    statement_tokens: usize,
    /// `else` keywords in the current clause (see [`MAX_ELSES`]).
    elses: usize,
}

/// Deepest nesting of `{` accepted.
pub const MAX_BRACE_DEPTH: usize = 128;

/// Most `else` keywords accepted in one clause: an `else if` chain nests one level per `else`.
pub const MAX_ELSES: usize = 1024;
/// Longest statement, predicate or declaration accepted, in tokens. This bounds the depth of
/// expression trees (`1+1+...` nests one level per operator) so that no later pass can run out
/// of stack on them.
pub const MAX_STATEMENT_TOKENS: usize = 4096;

impl<'a> Lexer<'a> {
    pub fn new(file: u32, src: &'a str) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            file,
            pos: 0,
            mode: Mode::Program,
            done: false,
            braces: Vec::new(),
            pred_start: 0,
            pred_parens: Vec::new(),
            types: HashSet::new(),
            typedef: None,
            ends: [0, 0],
            statement_tokens: 0,
            elses: 0,
        }
    }

    /// A lexer for a lone expression: C tokens from the start.
    pub fn new_expr(file: u32, src: &'a str) -> Self {
        let mut lexer = Lexer::new(file, src);
        lexer.mode = Mode::Code;
        lexer
    }

    pub(super) fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    pub(super) fn err(&self, start: usize, end: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.span(start, end), message)
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    /// True if the innermost open brace belongs to a clause body (or a block inside one).
    pub fn in_clause_body(&self) -> bool {
        self.braces
            .first()
            .is_some_and(|b| b.0 == BraceKind::Clause)
    }

    /// Skips whitespace and comments starting at `pos`, returning the new position.
    fn skip_trivia_from(&self, mut pos: usize) -> Result<usize, Diagnostic> {
        let b = self.bytes;
        loop {
            match b.get(pos) {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') => pos += 1,
                Some(b'/') if b.get(pos + 1) == Some(&b'*') => {
                    let start = pos;
                    match self.src[pos + 2..].find("*/") {
                        Some(i) => pos = pos + 2 + i + 2,
                        None => {
                            return Err(self
                                .err(start, start + 2, "unterminated comment")
                                .with_label("this comment is never closed with `*/`"))
                        }
                    }
                }
                Some(b'/') if b.get(pos + 1) == Some(&b'/') => {
                    pos = self.src[pos..].find('\n').map_or(b.len(), |i| pos + i);
                }
                Some(b'#') if pos == 0 && b.get(1) == Some(&b'!') => {
                    pos = self.src.find('\n').unwrap_or(b.len());
                }
                _ => return Ok(pos),
            }
        }
    }

    fn at_line_start(&self, pos: usize) -> bool {
        self.bytes[..pos]
            .iter()
            .rev()
            .take_while(|&&c| c != b'\n')
            .all(|&c| c == b' ' || c == b'\t')
    }

    fn lex(&mut self) -> Option<LexResult> {
        // Type qualifiers (`const`, `volatile`) are accepted and dropped, like whitespace.
        loop {
            self.pos = match self.skip_trivia_from(self.pos) {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            let end = self.ident_end(self.pos);
            if end > self.pos
                && !self.bytes[self.pos].is_ascii_digit()
                && is_qualifier(&self.src[self.pos..end])
            {
                if self.mode == Mode::Program {
                    self.mode = Mode::Code;
                }
                self.pos = end;
            } else {
                break;
            }
        }
        let Some(c) = self.peek() else {
            if self.mode == Mode::Predicate {
                let p = self.pred_start;
                return Some(Err(self
                    .err(
                        p,
                        p + 1,
                        "unexpected end of input: the predicate is never closed",
                    )
                    .with_label("predicate starts here")
                    .with_note(
                        "a predicate is written `/ expression /` before the clause body",
                    )));
            }
            return None;
        };
        if c == b'#' && self.at_line_start(self.pos) {
            return Some(self.directive());
        }
        match self.mode {
            Mode::Program => {
                if is_ident_start(c) {
                    let end = self.ident_end(self.pos);
                    let word = &self.src[self.pos..end];
                    let is_decl = (starts_declaration(word) || self.types.contains(word))
                        && self.bytes.get(end) != Some(&b':');
                    if is_decl {
                        self.mode = Mode::Code;
                    } else {
                        return Some(self.probe());
                    }
                } else if is_probe_start(c) {
                    return Some(self.probe());
                }
            }
            Mode::ExpectProbe => {
                self.mode = Mode::Program;
                if is_probe_start(c) {
                    return Some(self.probe());
                }
            }
            Mode::AfterProbe | Mode::AfterPred => {
                let start = self.pos;
                match c {
                    b',' if self.mode == Mode::AfterProbe => {
                        self.pos += 1;
                        self.mode = Mode::ExpectProbe;
                        return Some(Ok((start, Tok::Comma, start + 1)));
                    }
                    b'/' if self.mode == Mode::AfterProbe => {
                        self.pos += 1;
                        self.mode = Mode::Predicate;
                        self.pred_start = start;
                        self.pred_parens.clear();
                        return Some(Ok((start, Tok::PredOpen, start + 1)));
                    }
                    b'{' => {
                        self.pos += 1;
                        self.mode = Mode::Code;
                        self.braces.push((BraceKind::Clause, start));
                        return Some(Ok((start, Tok::LBrace, start + 1)));
                    }
                    _ => {
                        self.mode = Mode::Program;
                        return self.lex();
                    }
                }
            }
            Mode::Predicate | Mode::Code => {}
        }
        Some(self.code_token())
    }

    pub(super) fn ident_end(&self, mut pos: usize) -> usize {
        while self.bytes.get(pos).is_some_and(|&c| is_ident_char(c)) {
            pos += 1;
        }
        pos
    }

    /// `#pragma ...` or another preprocessor line, at the start of a line.
    fn directive(&mut self) -> LexResult {
        let start = self.pos;
        let mut end = self.src[start..]
            .find('\n')
            .map_or(self.bytes.len(), |i| start + i);
        // A comment ends the directive; the lexer skips it as usual afterwards.
        if let Some(i) = ["//", "/*"]
            .iter()
            .filter_map(|c| self.src[start..end].find(c))
            .min()
        {
            end = start + i;
        }
        let line = &self.src[start + 1..end];
        let mut words = line.split_whitespace().map(str::to_string);
        match words.next().as_deref() {
            Some("pragma") => {
                self.pos = end;
                let text_end = start + 1 + line.trim_end().len();
                Ok((start, Tok::Pragma(words.collect()), text_end))
            }
            first => {
                let word_end = match first {
                    Some(w) => start + 1 + line.find(w).unwrap_or(0) + w.len(),
                    None => start + 1,
                };
                Err(self
                    .err(
                        start,
                        word_end,
                        "tracer does not run the C preprocessor (-C)",
                    )
                    .with_label("preprocessor directive")
                    .with_note(
                        "only `#pragma D option ...` lines are understood; \
                         use `inline` declarations instead of `#define`",
                    ))
            }
        }
    }

    /// A probe description, lexed as one token.
    fn probe(&mut self) -> LexResult {
        let start = self.pos;
        let b = self.bytes;
        let mut pos = start;
        let mut in_path = false;
        while let Some(&c) = b.get(pos) {
            if c == b':' {
                pos += 1;
                in_path = b.get(pos) == Some(&b'/') && self.path_follows(pos);
                if in_path {
                    pos += 1;
                }
            } else if c == b'/' && in_path || is_probe_char(c) {
                pos += 1;
            } else {
                break;
            }
        }
        self.pos = pos;
        self.mode = Mode::AfterProbe;
        Ok((start, Tok::Probe(self.src[start..pos].to_string()), pos))
    }

    /// Whether the `/` at `pos` (right after a `:`) starts a path segment such as the
    /// `/bin/bash` of `uprobe:/bin/bash:readline`: it must run to another `:`.
    fn path_follows(&self, mut pos: usize) -> bool {
        while let Some(&c) = self.bytes.get(pos) {
            if c == b':' {
                return true;
            }
            if c != b'/' && !is_probe_char(c) {
                return false;
            }
            pos += 1;
        }
        false
    }

    /// An ordinary C token (clause bodies, predicates, declarations).
    fn code_token(&mut self) -> LexResult {
        let start = self.pos;
        let c = self.bytes[start];
        let tok = if is_ident_start(c) {
            return self.word();
        } else if c.is_ascii_digit() {
            return self.number();
        } else if c == b'"' {
            return self.string();
        } else if c == b'\'' {
            return self.char_lit();
        } else if c == b'$' {
            return self.macro_var();
        } else if c == b'@' {
            let end = self.ident_end(start + 1);
            self.pos = end;
            return Ok((
                start,
                Tok::AggRef(self.src[start + 1..end].to_string()),
                end,
            ));
        } else if c == b'/' && self.mode == Mode::Predicate && self.predicate_ends_after(start + 1)
        {
            self.pos += 1;
            if let Some(&(open, at)) = self.pred_parens.last() {
                let close = if open == b'(' { ')' } else { ']' };
                let (line, col) = self.line_col(at);
                return Err(self
                    .err(
                        start,
                        start + 1,
                        format!("missing `{close}` before the `/` that closes the predicate"),
                    )
                    .with_label(format!("expected `{close}` before this"))
                    .with_note(format!(
                        "the `{}` at line {line}, column {col} is never closed",
                        open as char
                    )));
            }
            self.mode = Mode::AfterPred;
            Tok::PredClose
        } else {
            let rest = &self.src[start..];
            let Some((text, tok)) = PUNCT.iter().find(|(p, _)| rest.starts_with(p)) else {
                let ch = rest.chars().next().unwrap_or('?');
                return Err(self
                    .err(
                        start,
                        start + ch.len_utf8(),
                        format!("unexpected character `{ch}`"),
                    )
                    .with_label("not valid in D"));
            };
            self.pos += text.len();
            self.punct(start, tok.clone())?
        };
        Ok((start, tok, self.pos))
    }

    /// Bookkeeping for punctuation: brace nesting, predicate parentheses, mode changes.
    fn punct(&mut self, start: usize, tok: Tok) -> Result<Tok, Diagnostic> {
        match (&tok, self.mode) {
            (Tok::LBrace, Mode::Predicate) => {
                let p = self.pred_start;
                return Err(self
                    .err(
                        start,
                        start + 1,
                        "missing `/` closing the predicate before `{`",
                    )
                    .with_label("expected `/` before this")
                    .with_note({
                        let (line, col) = self.line_col(p);
                        format!("the predicate starts with the `/` at line {line}, column {col}")
                    }));
            }
            (Tok::LParen | Tok::LBracket, Mode::Predicate) => {
                self.pred_parens.push((self.bytes[start], start));
            }
            (Tok::RParen | Tok::RBracket, Mode::Predicate) => {
                self.pred_parens.pop();
            }
            (Tok::LBrace, _) => self.braces.push((BraceKind::Block, start)),
            (Tok::RBrace, _) => match self.braces.pop() {
                Some((BraceKind::Clause, _)) if self.braces.is_empty() => self.mode = Mode::Program,
                None => self.mode = Mode::Program,
                _ => {}
            },
            (Tok::Semi, Mode::Code) if self.braces.is_empty() => {
                self.mode = Mode::Program;
                self.finish_typedef();
            }
            (Tok::Semi, _)
                if self
                    .typedef
                    .as_ref()
                    .is_some_and(|t| t.depth == self.braces.len()) =>
            {
                self.finish_typedef();
            }
            _ => {}
        }
        Ok(tok)
    }

    fn finish_typedef(&mut self) {
        if let Some(TypedefTrack {
            last_ident: Some(name),
            ..
        }) = self.typedef.take()
        {
            self.types.insert(name);
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.src[..pos.min(self.src.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }

    /// In a predicate, a `/` closes it when what follows is `{`, `;` or the end of input.
    fn predicate_ends_after(&self, pos: usize) -> bool {
        let next = match self.skip_trivia_from(pos) {
            Ok(p) => self.bytes.get(p).copied(),
            Err(_) => None,
        };
        matches!(next, None | Some(b'{' | b';'))
    }

    /// Identifier, keyword or type name.
    fn word(&mut self) -> LexResult {
        let start = self.pos;
        let end = self.ident_end(start);
        let word = &self.src[start..end];
        self.pos = end;
        if let Some(kw) = keyword(word) {
            if kw == Tok::Typedef {
                self.typedef = Some(TypedefTrack {
                    depth: self.braces.len(),
                    last_ident: None,
                });
            }
            return Ok((start, kw, end));
        }
        if is_c_type_word(word) {
            return Ok(self.c_type_words(start, end));
        }
        if is_builtin_type_name(word) || self.types.contains(word) {
            return Ok((start, Tok::TypeName(word.to_string()), end));
        }
        if let Some(t) = self.typedef.as_mut() {
            if t.depth == self.braces.len() {
                t.last_ident = Some(word.to_string());
            }
        }
        Ok((start, Tok::Ident(word.to_string()), end))
    }

    /// Merges consecutive C type words (`unsigned long long int`) into one type name.
    fn c_type_words(&mut self, start: usize, first_end: usize) -> Spanned {
        let mut words = vec![&self.src[start..first_end]];
        let mut end = first_end;
        while let Ok(p) = self.skip_trivia_from(end) {
            if !self.bytes.get(p).is_some_and(|&c| is_ident_start(c)) {
                break;
            }
            let e = self.ident_end(p);
            let w = &self.src[p..e];
            if is_c_type_word(w) {
                words.push(w);
                end = e;
            } else if is_qualifier(w) {
                end = e;
            } else {
                break;
            }
        }
        self.pos = end;
        (start, Tok::TypeName(words.join(" ")), end)
    }
}

impl Iterator for Lexer<'_> {
    type Item = LexResult;

    fn next(&mut self) -> Option<LexResult> {
        if self.done {
            return None;
        }
        let r = match self.lex() {
            Some(Ok((start, tok, end))) => {
                self.ends = [self.ends[1], end];
                self.statement_tokens += 1;
                if matches!(
                    tok,
                    Tok::Semi | Tok::LBrace | Tok::RBrace | Tok::PredOpen | Tok::PredClose
                ) {
                    self.statement_tokens = 0;
                }
                if tok == Tok::Else {
                    self.elses += 1;
                }
                if self.braces.is_empty() {
                    self.elses = 0;
                }
                if self.braces.len() > MAX_BRACE_DEPTH {
                    Some(Err(self
                        .err(start, end, "blocks are nested too deeply")
                        .with_label(format!(
                            "more than {MAX_BRACE_DEPTH} levels of `{{`"
                        ))))
                } else if self.elses > MAX_ELSES {
                    Some(Err(self
                        .err(start, end, "too many `else` branches in one clause")
                        .with_label(format!(
                            "more than {MAX_ELSES} `else` keywords"
                        ))))
                } else if self.statement_tokens > MAX_STATEMENT_TOKENS {
                    Some(Err(self
                        .err(start, end, "this statement is too long")
                        .with_label(format!("more than {MAX_STATEMENT_TOKENS} tokens since the last `;`"))
                        .with_note("split the expression into several statements using clause-local `this->` variables")))
                } else {
                    Some(Ok((start, tok, end)))
                }
            }
            other => other,
        };
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}
