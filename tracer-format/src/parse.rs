//! The format parser: DTrace's conversion dictionary (`_dtrace_conversions`) and
//! `dt_printf_create`'s splitting of a format into literal text and conversions.

use crate::FormatError;

fn err<T>(msg: String) -> Result<T, FormatError> {
    Err(FormatError(msg))
}

/// How a conversion renders its argument (DTrace's `pfprint_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Sint,
    Uint,
    /// Signed or unsigned following the argument (`%d`, `%i`).
    Dint,
    Float,
    KAddr,
    UAddr,
    Stack,
    Time,
    Time822,
    Str,
    WStr,
    EscStr,
    EscChr,
    Pct,
}

/// The compile-time check of a conversion (DTrace's `pfcheck_*`); see [`crate::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Addr,
    KAddr,
    UAddr,
    Stack,
    Time,
    Str,
    WStr,
    Csi,
    Fp,
    XInt,
    DInt,
    XShort,
    XLong,
    XLongLong,
    /// `pfcheck_type`: the argument must be compatible with the named C type.
    Type,
}

/// One entry of DTrace's `_dtrace_conversions` dictionary.
#[derive(Debug, PartialEq, Eq)]
pub struct ConvInfo {
    /// Name including length modifiers (`"d"`, `"llx"`, `"%"`).
    pub name: &'static str,
    /// The C conversion DTrace passes to printf (`%p` prints with `x`).
    pub ofmt: &'static str,
    /// Prototype text used in error messages (or the C type name for `Check::Type`).
    pub proto: &'static str,
    pub check: Check,
    pub render: Render,
}

const XINT: &str = "char, short, int, long, or long long";
const CSI: &str = "char, short, or int";
const FP: &str = "float, double, or long double";
const ADDR: &str = "pointer or integer";
const UADDR: &str = "pointer or integer (with -p/-c) or _usymaddr (without -p/-c)";
const CSTR: &str = "char [] or string (or use stringof)";
const WSTR: &str = "wchar_t []";

macro_rules! conv {
    ($n:expr, $o:expr, $p:expr, $c:ident, $r:ident) => {
        ConvInfo {
            name: $n,
            ofmt: $o,
            proto: $p,
            check: Check::$c,
            render: Render::$r,
        }
    };
}

/// DTrace's conversion dictionary, plus `hh` forms (an extension: DTrace lacks them).
pub static CONVERSIONS: &[ConvInfo] = &[
    conv!("a", "s", ADDR, KAddr, KAddr),
    conv!("A", "s", UADDR, UAddr, UAddr),
    conv!("c", "c", CSI, Csi, Sint),
    conv!("C", "s", CSI, Csi, EscChr),
    conv!("d", "d", XINT, DInt, Dint),
    conv!("e", "e", FP, Fp, Float),
    conv!("E", "E", FP, Fp, Float),
    conv!("f", "f", FP, Fp, Float),
    conv!("g", "g", FP, Fp, Float),
    conv!("G", "G", FP, Fp, Float),
    conv!("hd", "d", "short", Type, Sint),
    conv!("hi", "i", "short", Type, Sint),
    conv!("ho", "o", "unsigned short", Type, Uint),
    conv!("hu", "u", "unsigned short", Type, Uint),
    conv!("hx", "x", "short", XShort, Uint),
    conv!("hX", "X", "short", XShort, Uint),
    conv!("hhd", "d", "char", Type, Sint),
    conv!("hhi", "i", "char", Type, Sint),
    conv!("hho", "o", "unsigned char", Type, Uint),
    conv!("hhu", "u", "unsigned char", Type, Uint),
    conv!("hhx", "x", "char", Type, Uint),
    conv!("hhX", "X", "char", Type, Uint),
    conv!("i", "i", XINT, DInt, Dint),
    conv!("k", "s", "stack", Stack, Stack),
    conv!("lc", "lc", "int", Type, Sint),
    conv!("ld", "d", "long", Type, Sint),
    conv!("li", "i", "long", Type, Sint),
    conv!("lo", "o", "unsigned long", Type, Uint),
    conv!("lu", "u", "unsigned long", Type, Uint),
    conv!("ls", "ls", WSTR, WStr, WStr),
    conv!("lx", "x", "long", XLong, Uint),
    conv!("lX", "X", "long", XLong, Uint),
    conv!("lld", "d", "long long", Type, Sint),
    conv!("lli", "i", "long long", Type, Sint),
    conv!("llo", "o", "unsigned long long", Type, Uint),
    conv!("llu", "u", "unsigned long long", Type, Uint),
    conv!("llx", "x", "long long", XLongLong, Uint),
    conv!("llX", "X", "long long", XLongLong, Uint),
    conv!("Le", "e", "long double", Type, Float),
    conv!("LE", "E", "long double", Type, Float),
    conv!("Lf", "f", "long double", Type, Float),
    conv!("Lg", "g", "long double", Type, Float),
    conv!("LG", "G", "long double", Type, Float),
    conv!("o", "o", XINT, XInt, Uint),
    conv!("p", "x", ADDR, Addr, Uint),
    conv!("s", "s", CSTR, Str, Str),
    conv!("S", "s", CSTR, Str, EscStr),
    conv!("T", "s", "int64_t", Time, Time822),
    conv!("u", "u", XINT, XInt, Uint),
    conv!("wc", "wc", "int", Type, Sint),
    conv!("ws", "ws", WSTR, WStr, WStr),
    conv!("x", "x", XINT, XInt, Uint),
    conv!("X", "X", XINT, XInt, Uint),
    conv!("Y", "s", "int64_t", Time, Time),
    conv!("%", "%", "void", Type, Pct),
];

/// Look a conversion name (with its length modifiers) up in the dictionary.
pub fn lookup(name: &str) -> Option<&'static ConvInfo> {
    CONVERSIONS.iter().find(|c| c.name == name)
}

/// One `%` conversion of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv {
    /// 1-based position among the format's `%` conversions (DTrace's "conversion #n").
    pub number: usize,
    pub info: &'static ConvInfo,
    pub alt: bool,
    pub zpad: bool,
    pub left: bool,
    pub plus: bool,
    pub space: bool,
    pub group: bool,
    /// `%@…`: formats the aggregation value in printa.
    pub agg: bool,
    pub dyn_width: bool,
    pub dyn_prec: bool,
    pub width: u32,
    pub prec: u32,
}

/// A format split into literal text and conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Conv(Conv),
}

/// Parse a format like `dt_printf_create`.
pub fn parse(fmt: &str) -> Result<Vec<Piece>, FormatError> {
    let b = fmt.as_bytes();
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let mut pieces = Vec::new();
    let mut q = 0;
    let mut n = 0;
    while let Some(off) = b[q..len].iter().position(|&c| c == b'%') {
        let start = q + off;
        if start > q {
            pieces.push(Piece::Text(
                String::from_utf8_lossy(&b[q..start]).into_owned(),
            ));
        }
        n += 1;
        let mut c = Conv {
            number: n,
            info: &CONVERSIONS[0],
            alt: false,
            zpad: false,
            left: false,
            plus: false,
            space: false,
            group: false,
            agg: false,
            dyn_width: false,
            dyn_prec: false,
            width: 0,
            prec: 0,
        };
        let (mut digits, mut dot) = (0, 0);
        let mut name = String::new();
        let mut p = start;
        loop {
            p += 1;
            let ch = if p < len { b[p] } else { 0 };
            match ch {
                b'0'..=b'9' => {
                    if dot == 0 && digits == 0 && ch == b'0' {
                        c.zpad = true;
                        c.left = false;
                        continue;
                    }
                    let mut v: u32 = 0;
                    while p < len && b[p].is_ascii_digit() {
                        v = v.saturating_mul(10).saturating_add((b[p] - b'0') as u32);
                        p += 1;
                    }
                    p -= 1;
                    if dot != 0 {
                        c.prec = v;
                    } else {
                        c.width = v;
                    }
                    digits += 1;
                }
                b'#' => c.alt = true,
                b'*' => {
                    let slot = if dot != 0 {
                        &mut c.dyn_prec
                    } else {
                        &mut c.dyn_width
                    };
                    if *slot {
                        // DTrace's message always says "precision" here.
                        return err(format!(
                            "format conversion #{n} has more than one '*' specified for the \
                             output precision"
                        ));
                    }
                    *slot = true;
                }
                b'+' => c.plus = true,
                b'-' => {
                    c.left = true;
                    c.zpad = false;
                }
                b'.' => {
                    if dot != 0 {
                        return err(format!(
                            "format conversion #{n} has more than one '.' specified"
                        ));
                    }
                    dot += 1;
                    digits = 0;
                }
                b'?' => c.width = 16,
                b'@' => c.agg = true,
                b'\'' => c.group = true,
                b' ' => c.space = true,
                b'$' => {
                    return err(format!(
                        "format conversion #{n} uses unsupported positional format (%n$)"
                    ))
                }
                b'%' if b[p - 1] == b'%' => {
                    name.push('%');
                    break;
                }
                b'%' => {
                    return err(format!(
                        "format conversion #{n} cannot be combined with other format flags: %%"
                    ))
                }
                0 => {
                    return err(format!(
                        "format conversion #{n} name expected before end of format string"
                    ))
                }
                b'h' | b'l' | b'L' | b'w' => {
                    if name.len() < 6 {
                        name.push(ch as char);
                    }
                }
                _ => {
                    // Take the whole (possibly multi-byte) character for the message.
                    let rest = String::from_utf8_lossy(&b[p..len]);
                    let chr = rest.chars().next().unwrap_or('?');
                    name.push(chr);
                    p += chr.len_utf8().max(1) - 1;
                    break;
                }
            }
        }
        c.info = match lookup(&name) {
            Some(info) => info,
            None => return err(format!("format conversion #{n} is undefined: %{name}")),
        };
        pieces.push(Piece::Conv(c));
        q = p + 1;
    }
    if q < len || len == 0 {
        pieces.push(Piece::Text(
            String::from_utf8_lossy(&b[q..len]).into_owned(),
        ));
    }
    Ok(pieces)
}
