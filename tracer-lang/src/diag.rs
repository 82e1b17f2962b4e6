//! Diagnostics shared by every pass of the front end: an error message attached to a source
//! span, plus the [`SourceMap`] that knows the files spans point into, and plain-text rendering
//! through `codespan-reporting`.

use crate::syntax::ast::Span;
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::{Files, SimpleFiles};
use codespan_reporting::term::{self, termcolor::NoColor, Chars, Config};
use std::fmt;

/// A compile error at a place in the script (semantic analysis and lowering).
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub span: Span,
    pub message: String,
}

impl CompileError {
    pub fn new(span: Span, message: impl Into<String>) -> CompileError {
        CompileError {
            span,
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, CompileError>;

/// An error found in a D script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The headline, in plain user words.
    pub message: String,
    /// Where the problem is; rendered as a caret under the source.
    pub span: Span,
    /// Extra explanations printed after the snippet (`= note: ...`).
    pub notes: Vec<String>,
    /// Short text printed next to the caret.
    pub label: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span,
            notes: Vec::new(),
            label: None,
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Renders the diagnostic as plain text (ASCII, no colour):
    ///
    /// ```text
    /// error: unexpected `}`; expected an expression
    ///   --> script.d:3:13
    ///   |
    /// 3 |     x = 1 + };
    ///   |             ^ expected an expression
    /// ```
    pub fn render(&self, sources: &SourceMap) -> String {
        let file = self.span.file as usize;
        let Some(text) = sources.files.get(file).ok().map(|f| f.source().clone()) else {
            return self.render_plain();
        };
        let (start, end) = clamp_range(&text, self.span.start as usize, self.span.end as usize);
        let label =
            Label::primary(file, start..end).with_message(self.label.clone().unwrap_or_default());
        let diagnostic = CsDiagnostic::error()
            .with_message(&self.message)
            .with_labels(vec![label])
            .with_notes(self.notes.clone());
        let config = Config {
            chars: Chars::ascii(),
            ..Config::default()
        };
        let mut writer = NoColor::new(Vec::<u8>::new());
        match term::emit(&mut writer, &config, &sources.files, &diagnostic) {
            Ok(()) => String::from_utf8_lossy(&writer.into_inner()).into_owned(),
            Err(_) => self.render_plain(),
        }
    }

    fn render_plain(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        for note in &self.notes {
            out.push_str(&format!("  = {note}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Clamps a byte range to the text and to character boundaries.
fn clamp_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let mut start = start.min(text.len());
    let mut end = end.clamp(start, text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    (start, end)
}

/// A source line as the verifier line table stores it (`Emitted::line_of`): the file's index
/// in the [`SourceMap`] and its 1-based line, packed in one `u32` (12 bits of file, 20 of line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLine {
    pub file: u32,
    pub line: u32,
}

impl SourceLine {
    const LINE_BITS: u32 = 20;

    /// The line where `span` starts.
    pub fn of(sources: &SourceMap, span: Span) -> SourceLine {
        SourceLine {
            file: span.file,
            line: sources.line_col(span).0 as u32,
        }
    }

    pub fn pack(self) -> u32 {
        (self.file << Self::LINE_BITS) | (self.line & ((1 << Self::LINE_BITS) - 1))
    }

    pub fn unpack(packed: u32) -> SourceLine {
        SourceLine {
            file: packed >> Self::LINE_BITS,
            line: packed & ((1 << Self::LINE_BITS) - 1),
        }
    }
}

/// The source files diagnostics refer to, indexed by [`Span::file`].
#[derive(Default)]
pub struct SourceMap {
    files: SimpleFiles<String, String>,
}

impl fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut id = 0;
        while let Ok(file) = self.files.get(id) {
            list.entry(file.name());
            id += 1;
        }
        list.finish()
    }
}

impl SourceMap {
    pub fn new() -> Self {
        SourceMap::default()
    }

    /// Adds a file and returns its index, to be used as `Span::file`.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> u32 {
        self.files.add(name.into(), text.into()) as u32
    }

    /// The file's name, or `<unknown>` for an index that was never added.
    pub fn name(&self, file: u32) -> &str {
        self.files
            .get(file as usize)
            .map(|f| f.name().as_str())
            .unwrap_or("<unknown>")
    }

    /// The file's text, or "" for an index that was never added.
    pub fn text(&self, file: u32) -> &str {
        self.files
            .get(file as usize)
            .map(|f| f.source().as_str())
            .unwrap_or("")
    }

    /// 1-based line and column (in characters) of the start of `span`.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let text = self.text(span.file);
        let (start, _) = clamp_range(text, span.start as usize, span.start as usize);
        match self.files.location(span.file as usize, start) {
            Ok(loc) => (loc.line_number, loc.column_number),
            Err(_) => (1, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_lines_pack_the_file_and_the_line() {
        let mut sources = SourceMap::new();
        sources.add("a.d", "x\n");
        let b = sources.add("b.d", "BEGIN\n{\n  x = 1;\n}\n");
        let span = Span::new(b, 10, 11);
        let at = SourceLine::of(&sources, span);
        assert_eq!(at, SourceLine { file: 1, line: 3 });
        assert_eq!(SourceLine::unpack(at.pack()), at);
        assert_eq!(at.pack(), (1 << 20) | 3);
    }

    #[test]
    fn line_col_counts_characters() {
        let mut sources = SourceMap::new();
        let a = sources.add("a.d", "BEGIN\n{\n\tx = \"é\"; y\n}\n");
        let b = sources.add("b.d", "END");
        assert_eq!(
            (sources.name(a), sources.name(b), sources.text(b)),
            ("a.d", "b.d", "END")
        );
        assert_eq!(sources.line_col(Span::new(a, 0, 1)), (1, 1));
        assert_eq!(sources.line_col(Span::new(a, 6, 7)), (2, 1));
        // Tab, `x = "`, two-byte `é`, `"; `: `y` is character 11 of line 3.
        assert_eq!(sources.line_col(Span::new(a, 19, 20)), (3, 11));
        assert_eq!(sources.line_col(Span::new(b, 99, 99)), (1, 4));
        assert_eq!(sources.name(7), "<unknown>");
        assert_eq!(sources.line_col(Span::new(7, 3, 4)), (1, 1));
    }

    #[test]
    fn render_with_note_and_label() {
        let mut sources = SourceMap::new();
        let f = sources.add("script.d", "BEGIN { x = ; }\n");
        let d = Diagnostic::error(
            Span::new(f, 12, 13),
            "unexpected `;`; expected an expression",
        )
        .with_label("expected an expression")
        .with_note("a note");
        assert_eq!(
            d.render(&sources),
            "error: unexpected `;`; expected an expression\n  --> script.d:1:13\n  |\n\
             1 | BEGIN { x = ; }\n  |             ^ expected an expression\n  |\n  = a note\n\n"
        );
    }

    #[test]
    fn render_never_panics_on_bad_spans() {
        let mut sources = SourceMap::new();
        let f = sources.add("x.d", "é\n");
        for (start, end) in [(0, 1), (1, 0), (50, 60), (2, 3), (0, 99)] {
            let text = Diagnostic::error(Span::new(f, start, end), "m").render(&sources);
            assert!(text.starts_with("error: m\n"), "{text}");
        }
        let text = Diagnostic::error(Span::new(9, 0, 1), "m")
            .with_note("n")
            .render(&sources);
        assert_eq!(text, "error: m\n  = n\n");
    }
}
