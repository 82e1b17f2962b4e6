//! DTrace's printf engine at run time (libdtrace `dt_printf.c`).
//!
//! Formats arrive parsed ([`tracer_format::Format`], parsed and checked by the compiler);
//! [`format()`] renders one with a record's values. Every conversion is finally rendered
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
use tracer_common::Value;
use tracer_format::{Conv, Format, FormatError, Piece, Render};

fn err<T>(msg: String) -> Result<T, FormatError> {
    Err(FormatError(msg))
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
pub fn format_bytes(fmt: &Format, args: &[Value]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    render(&mut out, fmt.pieces(), args, &mut |_, _, _| {
        err("%@ conversion requires an aggregation and is not for use with printf( )".into())
    })?;
    Ok(out)
}

/// printf: render `fmt` with `args`.
pub fn format(fmt: &Format, args: &[Value]) -> Result<String, FormatError> {
    format_bytes(fmt, args).map(|b| String::from_utf8_lossy(&b).into_owned())
}
