//! DTrace's printf engine (libdtrace `dt_printf.c`).
//!
//! [`parse`] splits a format into [`Piece`]s exactly as `dt_printf_create` does (same flag
//! rules, same conversion dictionary, same error wording); [`arg_kinds`] lists what each
//! conversion consumes so the compiler can check calls (see `check.rs` for DTrace's full
//! prototype checks); [`format`] renders at run time. Every conversion is finally rendered
//! by the C library's `snprintf` with the format string DTrace would build (`"%" + flags +
//! width + ".prec" + ["ll"] + conversion`), so widths, rounding and flags are glibc's.
//!
//! Integer conversions follow the argument's D size and signedness like `pfprint_sint` /
//! `pfprint_uint`: `%u` of a signed 4-byte -1 prints 4294967295, `%x` of an 8-byte -1
//! prints 16 `f`s, `%d` of an unsigned value prints it unsigned (`pfcheck_dint`).
//! A precision of 0 is dropped (DTrace only emits `.N` for N > 0), a negative dynamic width
//! left-justifies. Float conversions take an `Int` whose bits are the IEEE value (8 bytes:
//! double, 4 bytes: float), because records carry raw bytes. `%S`/`%C` escape like
//! `strchr2esc`; as DTrace escapes the whole string record, `%S` of a string ends in `\0`.

use super::cfmt::{cformat, time_t, time_y, CArg};
use super::trace::write_stack;
use std::fmt;
use tracer_common::Value;

/// A format or argument error, worded like DTrace where DTrace has a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

fn err<T>(msg: String) -> Result<T, FormatError> {
    Err(FormatError(msg))
}

/// What one conversion consumes, in argument order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Int,
    Str,
    Float,
    /// A symbolic address (`%a`, `%A`); an integer is accepted too.
    Sym,
    /// A stack (`%k`).
    Stack,
    /// A `*` width or precision: an integer argument consumed before the value.
    Star,
    /// `%@…` in printa: the aggregation's value (consumes no argument).
    AggValue,
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

/// The compile-time check of a conversion (DTrace's `pfcheck_*`); used by `check.rs`.
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

impl Conv {
    /// What the conversion's value argument is (ignoring `*` and `%@`).
    pub fn kind(&self) -> Option<ArgKind> {
        Some(match self.info.render {
            Render::Pct => return None,
            Render::Sint | Render::Uint | Render::Dint => ArgKind::Int,
            Render::Time | Render::Time822 | Render::EscChr => ArgKind::Int,
            Render::Float => ArgKind::Float,
            Render::KAddr | Render::UAddr => ArgKind::Sym,
            Render::Stack => ArgKind::Stack,
            Render::Str | Render::WStr | Render::EscStr => ArgKind::Str,
        })
    }
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

/// The arguments a format consumes, in order: `Star` for each `*`, then the value's kind;
/// `AggValue` for `%@` conversions (which consume no argument); nothing for `%%`.
pub fn arg_kinds(fmt: &str) -> Result<Vec<ArgKind>, FormatError> {
    let mut kinds = Vec::new();
    for piece in parse(fmt)? {
        let Piece::Conv(c) = piece else { continue };
        if c.info.render == Render::Pct {
            continue;
        }
        if c.dyn_width {
            kinds.push(ArgKind::Star);
        }
        if c.dyn_prec {
            kinds.push(ArgKind::Star);
        }
        if c.agg {
            kinds.push(ArgKind::AggValue);
        } else if let Some(k) = c.kind() {
            kinds.push(k);
        }
    }
    Ok(kinds)
}

/// The resolved flags, width and precision of one conversion at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub alt: bool,
    pub zpad: bool,
    pub left: bool,
    pub plus: bool,
    pub group: bool,
    pub space: bool,
    /// Negative = left-justify (dynamic width).
    pub width: i32,
    /// Only emitted when > 0, as DTrace does.
    pub prec: i32,
}

impl Spec {
    fn new(c: &Conv, width: i32, prec: i32) -> Spec {
        Spec {
            alt: c.alt,
            zpad: c.zpad,
            left: c.left,
            plus: c.plus,
            group: c.group,
            space: c.space,
            width,
            prec,
        }
    }

    /// The C format DTrace builds in `dt_printf_format`: `%`, flags, width, `.prec`, then
    /// the length modifier and conversion.
    pub fn cfmt(&self, len: &str, conv: &str) -> String {
        let mut f = String::from("%");
        if self.alt {
            f.push('#');
        }
        if self.zpad {
            f.push('0');
        }
        if self.width < 0 || self.left {
            f.push('-');
        }
        if self.plus {
            f.push('+');
        }
        if self.group {
            f.push('\'');
        }
        if self.space {
            f.push(' ');
        }
        if self.width != 0 {
            f.push_str(&self.width.unsigned_abs().to_string());
        }
        if self.prec > 0 {
            f.push('.');
            f.push_str(&self.prec.to_string());
        }
        f.push_str(len);
        f.push_str(conv);
        f
    }

    /// Format a string with this spec's flags, width and precision (`%s`).
    pub fn string(&self, out: &mut Vec<u8>, s: &[u8]) {
        cformat(out, &self.cfmt("", "s"), CArg::Str(s));
    }
}

/// Render an integer like `pfprint_sint` (signed) / `pfprint_uint` (unsigned): sizes 1, 2
/// and 4 are widened to `int`, 8 bytes print with `ll`; the value is divided by `normal`.
pub fn format_int(
    out: &mut Vec<u8>,
    spec: &Spec,
    ofmt: &str,
    value: i64,
    size: u8,
    signed: bool,
    normal: u64,
) {
    let normal = normal.max(1);
    if ofmt == "c" || ofmt == "lc" || ofmt == "wc" {
        let v = if signed {
            value as i32 / normal as i32
        } else {
            (value as u32 / normal as u32) as i32
        };
        let conv = if ofmt == "lc" { "lc" } else { "c" };
        cformat(out, &spec.cfmt("", conv), CArg::Int(v));
        return;
    }
    match (signed, size) {
        (true, 1) => cformat(
            out,
            &spec.cfmt("", ofmt),
            CArg::Int(value as i8 as i32 / normal as i32),
        ),
        (true, 2) => cformat(
            out,
            &spec.cfmt("", ofmt),
            CArg::Int(value as i16 as i32 / normal as i32),
        ),
        (true, 4) => cformat(
            out,
            &spec.cfmt("", ofmt),
            CArg::Int(value as i32 / normal as i32),
        ),
        (true, _) => cformat(
            out,
            &spec.cfmt("ll", ofmt),
            CArg::LongLong(value / normal as i64),
        ),
        (false, 1) => cformat(
            out,
            &spec.cfmt("", ofmt),
            CArg::UInt(value as u8 as u32 / normal as u32),
        ),
        (false, 2) => cformat(
            out,
            &spec.cfmt("", ofmt),
            CArg::UInt(value as u16 as u32 / normal as u32),
        ),
        (false, 4) => cformat(
            out,
            &spec.cfmt("", ofmt),
            CArg::UInt(value as u32 / normal as u32),
        ),
        (false, _) => cformat(
            out,
            &spec.cfmt("ll", ofmt),
            CArg::ULongLong(value as u64 / normal),
        ),
    }
}

/// DTrace's `strchr2esc`: C escapes for control characters, quotes and backslashes,
/// `\NNN` octal for other non-printables; stops after a NUL (printed as `\0`).
pub fn escape(s: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(s.len());
    for &c in s {
        let esc = match c {
            0 => Some(b'0'),
            7 => Some(b'a'),
            8 => Some(b'b'),
            12 => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            11 => Some(b'v'),
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        if let Some(e) = esc {
            o.push(b'\\');
            o.push(e);
        } else if c == b' ' || (b'!'..=b'~').contains(&c) {
            o.push(c);
        } else {
            o.extend_from_slice(&[
                b'\\',
                b'0' + ((c >> 6) & 3),
                b'0' + ((c >> 3) & 7),
                b'0' + (c & 7),
            ]);
        }
        if c == 0 {
            break;
        }
    }
    o
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Int { .. } => "integer",
        Value::Str(_) => "string",
        Value::Stack(_) => "stack",
        Value::Sym(_) => "symbol",
        Value::Bytes(_) => "bytes",
    }
}

fn mismatch<T>(c: &Conv, v: &Value) -> Result<T, FormatError> {
    err(format!(
        "conversion #{} (%{}) is incompatible with a {} argument",
        c.number,
        c.info.name,
        type_name(v)
    ))
}

fn as_text(v: &Value) -> Option<Vec<u8>> {
    Some(match v {
        Value::Str(s) | Value::Sym(s) => s.as_bytes().to_vec(),
        Value::Int {
            value,
            signed: false,
            ..
        } => (*value as u64).to_string().into_bytes(),
        Value::Int { value, .. } => value.to_string().into_bytes(),
        Value::Bytes(b) => b.iter().take_while(|&&c| c != 0).copied().collect(),
        Value::Stack(_) => return None,
    })
}

/// Render one conversion's value argument.
pub fn render_value(
    out: &mut Vec<u8>,
    c: &Conv,
    spec: &Spec,
    v: &Value,
) -> Result<(), FormatError> {
    let ofmt = c.info.ofmt;
    match c.info.render {
        Render::Pct => out.push(b'%'),
        Render::Sint | Render::Uint | Render::Dint => {
            let Value::Int {
                value,
                size,
                signed,
            } = *v
            else {
                return mismatch(c, v);
            };
            let (signed, ofmt) = match c.info.render {
                Render::Sint => (true, ofmt),
                Render::Uint => (false, ofmt),
                _ if signed => (true, ofmt),
                _ => (false, "u"),
            };
            format_int(out, spec, ofmt, value, size, signed, 1);
        }
        Render::Float => {
            let Value::Int { value, size, .. } = *v else {
                return mismatch(c, v);
            };
            let f = if size == 4 {
                f32::from_bits(value as u32) as f64
            } else {
                f64::from_bits(value as u64)
            };
            cformat(out, &spec.cfmt("", ofmt), CArg::Double(f));
        }
        Render::KAddr | Render::UAddr => {
            let text = match v {
                Value::Int { value, .. } => format!("0x{:x}", *value as u64).into_bytes(),
                other => match as_text(other) {
                    Some(t) => t,
                    None => return mismatch(c, v),
                },
            };
            spec.string(out, &text);
        }
        Render::Stack => {
            let Value::Stack(frames) = v else {
                return mismatch(c, v);
            };
            // pfprint_stack: a left-justified width becomes the indent, not a field width.
            let indent = if spec.width < 0 {
                spec.width.unsigned_abs() as usize
            } else if spec.left {
                spec.width as usize
            } else {
                0
            };
            let frame_spec = Spec {
                width: if spec.left { 0 } else { spec.width },
                ..*spec
            };
            write_stack(out, frames, indent, &frame_spec.cfmt("", "s"));
        }
        Render::Time | Render::Time822 => {
            let Value::Int { value, .. } = *v else {
                return mismatch(c, v);
            };
            let t = if c.info.render == Render::Time {
                time_y(value as u64)
            } else {
                time_t(value as u64)
            };
            spec.string(out, t.as_bytes());
        }
        Render::Str | Render::WStr => match as_text(v) {
            Some(t) => spec.string(out, &t),
            None => return mismatch(c, v),
        },
        Render::EscStr => match v {
            Value::Bytes(b) => spec.string(out, &escape(b)),
            // DTrace escapes the whole string record, terminating NUL included, so the
            // text always ends in `\0` (pfprint_estr passes the record size).
            Value::Str(t) => {
                let mut b = t.as_bytes().to_vec();
                b.push(0);
                spec.string(out, &escape(&b));
            }
            other => match as_text(other) {
                Some(t) => spec.string(out, &escape(&t)),
                None => return mismatch(c, v),
            },
        },
        Render::EscChr => {
            let byte = match v {
                Value::Int { value, .. } => *value as u8,
                Value::Str(s) if !s.is_empty() => s.as_bytes()[0],
                _ => return mismatch(c, v),
            };
            spec.string(out, &escape(&[byte]));
        }
    }
    Ok(())
}

/// Renders `%@` conversions: given the conversion and its resolved spec, append the value.
pub type AggRender<'a> = dyn FnMut(&Conv, &Spec, &mut Vec<u8>) -> Result<(), FormatError> + 'a;

fn int_arg(c: &Conv, v: Option<&Value>, what: &str) -> Result<i32, FormatError> {
    match v {
        Some(Value::Int { value, .. }) => Ok(*value as i32),
        Some(other) => mismatch(c, other),
        None => err(format!(
            "conversion #{} (%{}) is missing a corresponding \"{}\" argument",
            c.number, c.info.name, what
        )),
    }
}

/// Render parsed pieces with `args` (printf arguments, or printa key values), calling
/// `agg` for `%@` conversions. Extra arguments are ignored.
pub fn render(
    out: &mut Vec<u8>,
    pieces: &[Piece],
    args: &[Value],
    agg: &mut AggRender<'_>,
) -> Result<(), FormatError> {
    let mut next = args.iter();
    for piece in pieces {
        let c = match piece {
            Piece::Text(t) => {
                out.extend_from_slice(t.as_bytes());
                continue;
            }
            Piece::Conv(c) => c,
        };
        if c.info.render == Render::Pct {
            out.push(b'%');
            continue;
        }
        let width = if c.dyn_width {
            int_arg(c, next.next(), "*")?
        } else {
            c.width as i32
        };
        let prec = if c.dyn_prec {
            int_arg(c, next.next(), ".*")?
        } else {
            c.prec as i32
        };
        let spec = Spec::new(c, width, prec);
        if c.agg {
            agg(c, &spec, out)?;
            continue;
        }
        match next.next() {
            Some(v) => render_value(out, c, &spec, v)?,
            None => {
                return err(format!(
                    "conversion #{} (%{}) is missing a corresponding value argument",
                    c.number, c.info.name
                ))
            }
        }
    }
    Ok(())
}

/// printf: render `fmt` with `args` into bytes (`%c` and `Bytes` can produce non-UTF-8).
pub fn format_bytes(fmt: &str, args: &[Value]) -> Result<Vec<u8>, FormatError> {
    let pieces = parse(fmt)?;
    let mut out = Vec::new();
    render(&mut out, &pieces, args, &mut |_, _, _| {
        err("%@ conversion requires an aggregation and is not for use with printf( )".into())
    })?;
    Ok(out)
}

/// printf: render `fmt` with `args`.
pub fn format(fmt: &str, args: &[Value]) -> Result<String, FormatError> {
    format_bytes(fmt, args).map(|b| String::from_utf8_lossy(&b).into_owned())
}
