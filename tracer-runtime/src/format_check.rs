//! The compiler's printf/printa check: an adapter from tracer-lang's types to
//! `tracer_format`'s argument classes (DTrace's rules and wording live there).

use tracer_format::{validate, ArgType, CallInfo, TypeClass};
use tracer_lang::types::Type;

/// The printf-like call `func`'s format `fmt` against its argument types (`printa` and
/// `printa-count` check a printa format against the first aggregation's keys).
pub fn check_format(func: &str, fmt: &str, types: &[Type]) -> Result<(), String> {
    let args: Vec<ArgType> = types.iter().map(arg_type).collect();
    let call = match func {
        "printa" => CallInfo::printa(false),
        "printa-count" => CallInfo::printa(true),
        _ => CallInfo::printf(func),
    };
    validate(fmt, &args, &call).map(|_| ()).map_err(|e| e.0)
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
