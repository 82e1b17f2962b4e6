//! Compile-time checks of printf-like calls: DTrace's `dt_printf_validate`, with its
//! error wording (messages carry no trailing newline).
//!
//! The compiler describes each argument expression with an [`ArgType`] (its class and the
//! D type name DTrace would print, e.g. `int`, `string`, `char [32]`) and calls
//! [`validate`]. Example (`printf("%d %d\n", 1, 2, 3)`):
//! `printf( ) prototype mismatch: only 2 arguments required by this format string`.

use crate::parse::{Check, Conv, Piece, Render};
use crate::{Format, FormatError};

/// The class of a D type, as far as printf cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    Int {
        size: u8,
        signed: bool,
    },
    Float {
        size: u8,
    },
    /// `string`.
    Str,
    Pointer,
    /// `stack()` / `ustack()`.
    Stack,
    /// `sym()`/`func()`/`mod()` results (`_symaddr`).
    KSym,
    /// `usym()`/`ufunc()`/`umod()`/`uaddr()` results (`_usymaddr`).
    USym,
    /// Anything else (structs, aggregations, void...).
    Other,
}

/// One argument expression's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgType {
    pub class: TypeClass,
    /// The type name shown in errors (`dt_node_type_name`).
    pub name: String,
}

impl ArgType {
    pub fn new(class: TypeClass, name: &str) -> ArgType {
        ArgType {
            class,
            name: name.into(),
        }
    }

    /// An integer with a conventional D name (`char`, `short`, `int`, `int64_t`, ...).
    pub fn int(size: u8, signed: bool) -> ArgType {
        let name = match (size, signed) {
            (1, true) => "char",
            (1, false) => "uchar_t",
            (2, true) => "short",
            (2, false) => "ushort_t",
            (4, true) => "int",
            (4, false) => "uint_t",
            (_, true) => "int64_t",
            (_, false) => "uint64_t",
        };
        ArgType::new(TypeClass::Int { size, signed }, name)
    }

    pub fn string() -> ArgType {
        ArgType::new(TypeClass::Str, "string")
    }
}

/// The call being checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo<'a> {
    /// `printf`, `printa`, `system`, `freopen`...
    pub func: &'a str,
    /// Position of the first checked argument minus one (printf: 1, the format is #1).
    pub first_arg: usize,
    /// printf-like calls must consume every argument (`DT_PRINTF_EXACTLEN`).
    pub exact: bool,
    /// printa: `Some(is_count)`; `%@` conversions are then allowed and typed
    /// `uint64_t` for count(), `int64_t` otherwise.
    pub aggregation: Option<bool>,
    /// `$target` is set (`-p`/`-c`): `%A` also accepts integers and pointers.
    pub target: bool,
}

impl<'a> CallInfo<'a> {
    pub fn printf(func: &'a str) -> CallInfo<'a> {
        CallInfo {
            func,
            first_arg: 1,
            exact: true,
            aggregation: None,
            target: false,
        }
    }

    pub fn printa(is_count: bool) -> CallInfo<'a> {
        CallInfo {
            func: "printa",
            first_arg: 1,
            exact: false,
            aggregation: Some(is_count),
            target: false,
        }
    }
}

fn is_int(t: &TypeClass) -> bool {
    matches!(t, TypeClass::Int { .. })
}

/// `pfcheck_*`: is an argument of class `t` acceptable for `c`?
pub fn compatible(c: &Conv, t: &TypeClass, target: bool) -> bool {
    let int = |size: u8, signed: bool| *t == TypeClass::Int { size, signed };
    match c.info.check {
        Check::Addr => is_int(t) || *t == TypeClass::Pointer,
        Check::KAddr => is_int(t) || matches!(t, TypeClass::Pointer | TypeClass::KSym),
        Check::UAddr => {
            *t == TypeClass::USym || (target && (is_int(t) || *t == TypeClass::Pointer))
        }
        Check::Stack => *t == TypeClass::Stack,
        Check::Time => matches!(t, TypeClass::Int { size: 8, .. }),
        Check::Str => *t == TypeClass::Str,
        Check::WStr => false,
        Check::Csi => matches!(t, TypeClass::Int { size, .. } if *size <= 4),
        Check::Fp => matches!(t, TypeClass::Float { .. }),
        Check::XInt | Check::DInt => is_int(t),
        Check::XShort => matches!(t, TypeClass::Int { size: 2, .. }),
        Check::XLong | Check::XLongLong => matches!(t, TypeClass::Int { size: 8, .. }),
        Check::Type => match c.info.proto {
            "char" => int(1, true),
            "unsigned char" => int(1, false),
            "short" => int(2, true),
            "unsigned short" => int(2, false),
            "int" => int(4, true),
            "long" | "long long" => int(8, true),
            "unsigned long" | "unsigned long long" => int(8, false),
            "long double" => *t == TypeClass::Float { size: 16 },
            _ => true,
        },
    }
}

/// Check a format against the call's arguments like `dt_printf_validate`; returns the
/// parsed format.
pub fn validate(fmt: &str, args: &[ArgType], call: &CallInfo) -> Result<Format, FormatError> {
    let func = call.func;
    let e = |m: String| Err(FormatError(m));
    if fmt.is_empty() {
        return e(format!("{func}( ) format string is empty"));
    }
    let format = Format::parse(fmt)?;
    let mut next = args.iter();
    let mut j = 0;
    for piece in format.pieces() {
        let Piece::Conv(c) = piece else { continue };
        let (n, name) = (c.number, c.info.name);
        if c.info.render == Render::Pct {
            continue;
        }
        let dyns = [(c.dyn_width, "*"), (c.dyn_prec, ".*")];
        for (_, what) in dyns.iter().filter(|d| d.0) {
            let Some(a) = next.next() else {
                return e(format!(
                    "{func}( ) prototype mismatch: conversion #{n} (%{name}) is missing a \
                     corresponding \"{what}\" argument"
                ));
            };
            if !is_int(&a.class) {
                return e(format!(
                    "{func}( ) argument #{} is incompatible with conversion #{n} prototype:\n\
                     \tconversion: % {what} {name}\n\t prototype: int\n\t  argument: {}",
                    j + call.first_arg + 1,
                    a.name
                ));
            }
            j += 1;
        }
        let (vname, ty) = if c.agg {
            let Some(count) = call.aggregation else {
                return e(format!(
                    "%@ conversion requires an aggregation and is not for use with {func}( )"
                ));
            };
            let t = ArgType::int(8, !count);
            ("aggregating action".to_string(), t)
        } else {
            let Some(a) = next.next() else {
                return e(format!(
                    "{func}( ) prototype mismatch: conversion #{n} (%{name}) is missing a \
                     corresponding value argument"
                ));
            };
            j += 1;
            (format!("argument #{}", j + call.first_arg), a.clone())
        };
        if !compatible(c, &ty.class, call.target) {
            return e(format!(
                "{func}( ) {vname} is incompatible with conversion #{n} prototype:\n\
                 \tconversion: %{name}\n\t prototype: {}\n\t  argument: {}",
                c.info.proto, ty.name
            ));
        }
    }
    if call.exact && next.next().is_some() {
        return e(format!(
            "{func}( ) prototype mismatch: only {j} arguments required by this format string"
        ));
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(fmt: &str, args: &[ArgType]) -> String {
        validate(fmt, args, &CallInfo::printf("printf"))
            .unwrap_err()
            .0
    }

    #[test]
    fn dtrace_messages() {
        let int = ArgType::int(4, true);
        // printf/err.D_PRINTF_ARG_EXTRA.toomany
        assert_eq!(
            msg("x = %d y = %d\n", &[int.clone(), int.clone(), int.clone()]),
            "printf( ) prototype mismatch: only 2 arguments required by this format string"
        );
        // printf/err.D_PRINTF_DYN_TYPE.badwidth
        assert_eq!(
            msg("%*d\n", &[ArgType::string(), int.clone()]),
            "printf( ) argument #2 is incompatible with conversion #1 prototype:\n\tconversion: % * d\n\
             \t prototype: int\n\t  argument: string"
        );
        // printf/err.D_PRINTF_ARG_TYPE.aggarg
        assert_eq!(
            msg("%d %d\n", &[int.clone(), ArgType::new(TypeClass::Other, "aggregation")]),
            "printf( ) argument #3 is incompatible with conversion #2 prototype:\n\tconversion: %d\n\
             \t prototype: char, short, int, long, or long long\n\t  argument: aggregation"
        );
        // printf/err.D_PRINTF_ARG_PROTO.novalue
        assert_eq!(
            msg("%s\n", &[]),
            "printf( ) prototype mismatch: conversion #1 (%s) is missing a corresponding value argument"
        );
        assert_eq!(
            msg("%.*s", &[]),
            "printf( ) prototype mismatch: conversion #1 (%s) is missing a corresponding \".*\" argument"
        );
        assert_eq!(msg("", &[]), "printf( ) format string is empty");
        assert_eq!(
            msg("%@d", &[]),
            "%@ conversion requires an aggregation and is not for use with printf( )"
        );
        assert_eq!(
            msg("%s", std::slice::from_ref(&int)),
            "printf( ) argument #2 is incompatible with conversion #1 prototype:\n\tconversion: %s\n\
             \t prototype: char [] or string (or use stringof)\n\t  argument: int"
        );
    }

    #[test]
    fn accepted_calls() {
        let ok =
            |fmt: &str, args: &[ArgType]| validate(fmt, args, &CallInfo::printf("printf")).is_ok();
        assert!(ok(
            "%d %s %c %x %p\n",
            &[
                ArgType::int(8, true),
                ArgType::string(),
                ArgType::int(1, true),
                ArgType::int(4, false),
                ArgType::new(TypeClass::Pointer, "void *"),
            ]
        ));
        assert!(ok(
            "%hd %hu %ld %llu",
            &[
                ArgType::int(2, true),
                ArgType::int(2, false),
                ArgType::int(8, true),
                ArgType::int(8, false)
            ]
        ));
        assert!(!ok("%ld", &[ArgType::int(4, true)]));
        assert!(!ok("%c", &[ArgType::int(8, true)]));
        assert!(ok(
            "%a %k %Y",
            &[
                ArgType::new(TypeClass::KSym, "_symaddr"),
                ArgType::new(TypeClass::Stack, "stack"),
                ArgType::int(8, false)
            ]
        ));
        assert!(ok("%%", &[]));
        // printa: %@ conversions take no argument; keys may be left unprinted.
        let pa = |fmt: &str, keys: &[ArgType], count| {
            validate(fmt, keys, &CallInfo::printa(count)).is_ok()
        };
        assert!(pa(
            "%@u: %d\n",
            &[ArgType::int(4, true), ArgType::int(4, true)],
            true
        ));
        assert!(pa("%@lld", &[], false));
        assert!(!pa("%@s", &[], false));
    }
}
