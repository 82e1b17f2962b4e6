//! Decoded values: what the runtime hands to the output formatters.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// An integer with its D width and signedness (they decide trace()/key layouts).
    Int {
        value: i64,
        size: u8,
        signed: bool,
    },
    Str(String),
    /// Symbolized stack frames, innermost first (``module`func+0xoff`` or a hex address).
    Stack(Vec<String>),
    /// A symbolized address (``module`func+0xoff`` or hex).
    Sym(String),
    /// Raw bytes (copyin, tracemem).
    Bytes(Vec<u8>),
}

impl Value {
    pub fn int(value: i64) -> Value {
        Value::Int {
            value,
            size: 8,
            signed: true,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int { value, .. } => Some(*value),
            _ => None,
        }
    }
}
