//! Literal typing: the type C gives an integer or character literal, and the number a macro
//! argument (`$1`) spells.

use crate::types::Type;

/// The type C gives an integer literal: the first of `int`, `unsigned int`, `long long`,
/// `unsigned long long` that holds it and its suffix (`u`, `l`, `ul`, `ll`, `ull`) allows.
pub fn int_literal_type(value: u64, suffix: &str) -> Type {
    let unsigned = suffix.contains('u');
    let long = suffix.contains('l');
    if !long && value <= i32::MAX as u64 && !unsigned {
        Type::INT
    } else if !long && unsigned && value <= u32::MAX as u64 {
        Type::UINT
    } else if value <= i64::MAX as u64 && !unsigned {
        Type::LONG
    } else {
        Type::ULONG
    }
}

/// A character literal (`'a'`) is a `char`.
pub const CHAR: Type = Type::Int {
    size: 1,
    signed: true,
};

/// The type of a macro argument used as a number (`$1`, `$target`).
pub const MACRO: Type = Type::LONG;

/// A macro argument's text as a number: decimal, `0x` hexadecimal or `0` octal, with an
/// optional leading `-`. None when it is not a number.
pub fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<u64>().ok()?
    } as i64;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_types_follow_c() {
        assert_eq!(int_literal_type(1, ""), Type::INT);
        assert_eq!(int_literal_type(1, "u"), Type::UINT);
        assert_eq!(int_literal_type(1, "l"), Type::LONG);
        assert_eq!(int_literal_type(1, "ull"), Type::ULONG);
        assert_eq!(int_literal_type(1 << 31, ""), Type::LONG);
        assert_eq!(int_literal_type(u64::MAX, ""), Type::ULONG);
    }

    #[test]
    fn macro_numbers() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("017"), Some(15));
        assert_eq!(parse_int("ls"), None);
    }
}
