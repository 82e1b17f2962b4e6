//! The compiler's printf/printa check, with the output code's DTrace rules and wording:
//! tracer-lang types become the printf engine's argument classes.

/// The compiler's printf check, with the output code's DTrace rules and wording.
pub fn check_format(
    func: &str,
    fmt: &str,
    types: &[tracer_lang::types::Type],
) -> Result<(), String> {
    use tracer_lang::types::Type;
    use tracer_output::check::{validate, ArgType, CallInfo, TypeClass};
    let args: Vec<ArgType> = types
        .iter()
        .map(|t| match t {
            Type::Int { size, signed } => ArgType::int(*size, *signed),
            Type::Str => ArgType::string(),
            Type::Ptr(_) => ArgType::new(TypeClass::Pointer, &t.to_string()),
            Type::Stack { .. } => ArgType::new(TypeClass::Stack, "stack"),
            Type::Sym { user: false } => ArgType::new(TypeClass::KSym, "_symaddr"),
            Type::Sym { user: true } => ArgType::new(TypeClass::USym, "_usymaddr"),
            Type::Void => ArgType::new(TypeClass::Other, "void"),
            Type::Struct { .. } | Type::Array { .. } => {
                ArgType::new(TypeClass::Other, &t.to_string())
            }
        })
        .collect();
    let call = match func {
        "printa" => CallInfo::printa(false),
        "printa-count" => CallInfo::printa(true),
        _ => CallInfo::printf(func),
    };
    validate(fmt, &args, &call).map(|_| ()).map_err(|e| e.0)
}
