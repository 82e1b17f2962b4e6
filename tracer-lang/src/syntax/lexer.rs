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
    src: &'a str,
    bytes: &'a [u8],
    file: u32,
    pos: usize,
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
}

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
        }
    }

    /// A lexer for a lone expression: C tokens from the start.
    pub fn new_expr(file: u32, src: &'a str) -> Self {
        let mut lexer = Lexer::new(file, src);
        lexer.mode = Mode::Code;
        lexer.braces.push((BraceKind::Block, 0));
        lexer
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn err(&self, start: usize, end: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.span(start, end), message)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
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

    fn ident_end(&self, mut pos: usize) -> usize {
        while self.bytes.get(pos).is_some_and(|&c| is_ident_char(c)) {
            pos += 1;
        }
        pos
    }

    /// `#pragma ...` or another preprocessor line, at the start of a line.
    fn directive(&mut self) -> LexResult {
        let start = self.pos;
        let end = self.src[start..]
            .find('\n')
            .map_or(self.bytes.len(), |i| start + i);
        let line = &self.src[start + 1..end];
        let mut words = line.split_whitespace().map(str::to_string);
        match words.next().as_deref() {
            Some("pragma") => {
                self.pos = end;
                Ok((start, Tok::Pragma(words.collect()), end.max(start + 1)))
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

    fn number(&mut self) -> LexResult {
        let start = self.pos;
        let b = self.bytes;
        let hex = b[start] == b'0' && matches!(b.get(start + 1), Some(b'x' | b'X'));
        let digits_start = if hex { start + 2 } else { start };
        let mut pos = digits_start;
        while b.get(pos).is_some_and(|c| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
        }) {
            pos += 1;
        }
        let digits = &self.src[digits_start..pos];
        if b.get(pos) == Some(&b'.') && b.get(pos + 1).is_some_and(u8::is_ascii_digit) {
            let end = self.ident_end(pos + 1);
            return Err(self
                .err(
                    start,
                    end,
                    "floating-point constants are not supported in D",
                )
                .with_label("not an integer"));
        }
        let suffix_start = pos;
        while b
            .get(pos)
            .is_some_and(|c| matches!(c, b'u' | b'U' | b'l' | b'L'))
        {
            pos += 1;
        }
        let suffix = self.src[suffix_start..pos].to_ascii_lowercase();
        let end = self.ident_end(pos);
        self.pos = end;
        let text = &self.src[start..end];
        let suffix = match suffix.as_str() {
            _ if end != pos || (hex && digits.is_empty()) => {
                return Err(self
                    .err(start, end, format!("invalid integer constant `{text}`"))
                    .with_label("not a valid number")
                    .with_note(
                        "a number directly followed by letters (like `10ms`) is only valid in a probe \
                         description such as `tick-10ms`",
                    ));
            }
            "" | "u" | "l" | "ul" | "ll" | "ull" => suffix,
            "lu" => "ul".to_string(),
            "llu" => "ull".to_string(),
            _ => {
                return Err(self
                    .err(
                        suffix_start,
                        end,
                        format!(
                            "invalid suffix `{}` on integer constant",
                            &self.src[suffix_start..end]
                        ),
                    )
                    .with_label("invalid suffix"))
            }
        };
        let radix = if hex {
            16
        } else if digits.len() > 1 && digits.starts_with('0') {
            8
        } else {
            10
        };
        let digits = if radix == 8 { &digits[1..] } else { digits };
        if let Some(i) = digits.bytes().position(|c| radix == 8 && c >= b'8') {
            let at = start + 1 + i;
            return Err(self
                .err(at, at + 1, "invalid digit in octal constant")
                .with_label("not an octal digit"));
        }
        match u64::from_str_radix(digits, radix) {
            Ok(v) => Ok((start, Tok::Int((v, suffix)), end)),
            Err(_) => Err(self
                .err(
                    start,
                    end,
                    format!("integer constant `{text}` is too large"),
                )
                .with_label("does not fit in 64 bits")),
        }
    }

    /// Decodes one escape sequence; `self.pos` is at the backslash.
    fn escape(&mut self, what: &str) -> Result<u8, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.err(start, start + 1, format!("unterminated {what}")));
        };
        self.pos += 1;
        let v = match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'v' => 0x0b,
            b'\\' | b'\'' | b'"' | b'?' => c,
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                u8::try_from(v).map_err(|_| {
                    self.err(start, self.pos, "octal escape sequence out of range")
                        .with_label("larger than 0377")
                })?
            }
            b'x' => {
                let mut v = 0u8;
                let mut n = 0;
                while n < 2 {
                    let Some(d) = self.peek().and_then(|d| (d as char).to_digit(16)) else {
                        break;
                    };
                    v = v * 16 + d as u8;
                    n += 1;
                    self.pos += 1;
                }
                if n == 0 {
                    return Err(self
                        .err(start, self.pos, "`\\x` used with no following hex digits")
                        .with_label("invalid escape sequence"));
                }
                v
            }
            _ => {
                let ch = self.src[start + 1..].chars().next().unwrap_or('?');
                self.pos = start + 1 + ch.len_utf8();
                return Err(self
                    .err(
                        start,
                        self.pos,
                        format!("invalid escape sequence `\\{ch}` in {what}"),
                    )
                    .with_label("unknown escape"));
            }
        };
        Ok(v)
    }

    fn string(&mut self) -> LexResult {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(self
                        .err(start, start + 1, "unterminated string literal")
                        .with_label("this string is never closed with `\"`"))
                }
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') if self.peek_at(1) == Some(b'\n') => self.pos += 2,
                Some(b'\\') => out.push(self.escape("string literal")?),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        match String::from_utf8(out) {
            Ok(s) => Ok((start, Tok::Str(s), self.pos)),
            Err(_) => Err(self
                .err(start, self.pos, "string literal is not valid UTF-8")
                .with_label("escapes produce invalid UTF-8")),
        }
    }

    fn char_lit(&mut self) -> LexResult {
        let start = self.pos;
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(self
                        .err(start, start + 1, "unterminated character constant")
                        .with_label("this character constant is never closed with `'`"))
                }
                Some(b'\'') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => values.push(self.escape("character constant")?),
                Some(c) => {
                    values.push(c);
                    self.pos += 1;
                }
            }
        }
        match values.as_slice() {
            [v] => Ok((start, Tok::Char(*v), self.pos)),
            [] => Err(self.err(start, self.pos, "empty character constant")),
            _ => Err(self
                .err(
                    start,
                    self.pos,
                    "multi-character constants are not supported",
                )
                .with_label("use a string literal instead")),
        }
    }

    /// `$1`, `$target`, `$$1`.
    fn macro_var(&mut self) -> LexResult {
        let start = self.pos;
        let as_string = self.peek_at(1) == Some(b'$');
        let name_start = start + if as_string { 2 } else { 1 };
        let end = self.ident_end(name_start);
        self.pos = end;
        if end == name_start {
            return Err(self
                .err(
                    start,
                    name_start,
                    "expected a macro argument such as `$1` or `$target` after `$`",
                )
                .with_label("incomplete macro variable"));
        }
        let name = self.src[name_start..end].to_string();
        Ok((
            start,
            if as_string {
                Tok::MacroStr(name)
            } else {
                Tok::Macro(name)
            },
            end,
        ))
    }
}

impl Iterator for Lexer<'_> {
    type Item = LexResult;

    fn next(&mut self) -> Option<LexResult> {
        if self.done {
            return None;
        }
        let r = self.lex();
        match &r {
            Some(Ok((_, _, end))) => self.ends = [self.ends[1], *end],
            Some(Err(_)) | None => self.done = true,
        }
        r
    }
}
