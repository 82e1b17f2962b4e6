//! DTrace's printf/printa formats, shared by the compiler and the output code.
//!
//! * [`parse`](mod@parse) splits a format into [`Piece`]s exactly as libdtrace's
//!   `dt_printf_create` does (same flag rules, same conversion dictionary, same error wording).
//! * [`check`] is `dt_printf_validate`: the compile-time prototype checks of a call's
//!   arguments against the format, with DTrace's messages.
//! * [`Format`] is a parsed format as the compiled script carries it, so nothing parses a
//!   format again per record. Rendering is tracer-output's (`printf.rs`).

pub mod check;
pub mod parse;

#[cfg(test)]
mod tests;

pub use check::{validate, ArgType, CallInfo, TypeClass};
pub use parse::{lookup, Check, Conv, ConvInfo, Piece, Render, CONVERSIONS};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A format or argument error, worded like DTrace where DTrace has a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// A parsed format: its source text and its pieces.
///
/// It serializes as the source text and is parsed again when deserialized. `Debug` and
/// `Display` show the source text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Format {
    source: String,
    pieces: Vec<Piece>,
}

impl Format {
    /// Parse a format like `dt_printf_create` (see [`parse::parse`]).
    pub fn parse(source: &str) -> Result<Format, FormatError> {
        Ok(Format {
            source: source.to_string(),
            pieces: parse::parse(source)?,
        })
    }

    /// The format as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Literal text and conversions, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<String> for Format {
    type Error = FormatError;

    fn try_from(source: String) -> Result<Format, FormatError> {
        let pieces = parse::parse(&source)?;
        Ok(Format { source, pieces })
    }
}

impl From<Format> for String {
    fn from(f: Format) -> String {
        f.source
    }
}
