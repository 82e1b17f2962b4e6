//! printf-like formats against their arguments: D types become `tracer_format`'s argument
//! classes, and tracer-format checks them with DTrace's rules and wording. What passes is
//! the parsed format the compiled script keeps.

use crate::types::Type;
use tracer_format::{validate, ArgType, CallInfo, Format, TypeClass};

/// The printf-like call `func`'s format `fmt` against its argument types (`printa` and
/// `printa-count` check a printa format against the first aggregation's keys).
pub fn check(func: &str, fmt: &str, types: &[Type]) -> Result<Format, String> {
    let args: Vec<ArgType> = types.iter().map(arg_type).collect();
    let call = match func {
        "printa" => CallInfo::printa(false),
        "printa-count" => CallInfo::printa(true),
        _ => CallInfo::printf(func),
    };
    validate(fmt, &args, &call).map_err(|e| e.0)
}

/// A D type as printf sees it.
fn arg_type(t: &Type) -> ArgType {
    match t {
        Type::Int { size, signed } => ArgType::int(*size, *signed),
        Type::Str => ArgType::string(),
        Type::Ptr(_) => ArgType::new(TypeClass::Pointer, &t.to_string()),
        Type::Stack { .. } => ArgType::new(TypeClass::Stack, "stack"),
        Type::Sym { user: false } => ArgType::new(TypeClass::KSym, "_symaddr"),
        Type::Sym { user: true } => ArgType::new(TypeClass::USym, "_usymaddr"),
        Type::Void => ArgType::new(TypeClass::Other, "void"),
        Type::Struct { .. } | Type::Array { .. } => ArgType::new(TypeClass::Other, &t.to_string()),
    }
}
