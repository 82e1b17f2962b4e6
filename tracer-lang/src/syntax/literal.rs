//! Lexing of literals: integers, character constants, strings with C escapes, and macro
//! variables (`$1`, `$$target`).

use super::lexer::{LexResult, Lexer};
use super::token::Tok;
use crate::diag::Diagnostic;

impl Lexer<'_> {
    pub(super) fn number(&mut self) -> LexResult {
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

    pub(super) fn string(&mut self) -> LexResult {
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

    pub(super) fn char_lit(&mut self) -> LexResult {
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
    pub(super) fn macro_var(&mut self) -> LexResult {
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
