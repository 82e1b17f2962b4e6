//! Record layouts of `trace()`, `stack()`/`ustack()`, `tracemem()` and symbols
//! (libdtrace `dt_print_trace`, `dt_print_bytes`, `dt_print_rawbytes`, `dt_print_stack`).
//!
//! Integers follow dtrace-utils: the layout depends on size and sign, signed
//! `" %19ld" / " %10d" / " %5hd" / " %3hhd"`, unsigned `" %20lu" / " %10u" / " %5hu" /
//! " %3hhu"`, and plain `%ld`/`%u`/... when quiet. Strings and byte buffers go through
//! strings as `"  %-33s"` (`"%s"` when quiet). Byte buffers go through DTrace's
//! printable-string test (`dt_print_bytes`): printable bytes padded with NULs print as a
//! string, anything else as a hex dump.

use super::cfmt::{cformat, CArg};
use tracer_common::Value;

/// DTrace's default `stackindent`.
pub const STACK_INDENT: usize = 14;

/// `dt_print_stack`: a newline, then each frame indented and formatted with `frame_fmt`
/// (a `%s` C format, `"%s"` normally) followed by a newline.
pub fn write_stack(out: &mut Vec<u8>, frames: &[String], indent: usize, frame_fmt: &str) {
    out.push(b'\n');
    for f in frames {
        out.resize(out.len() + indent, b' ');
        cformat(out, frame_fmt, CArg::Str(f.as_bytes()));
        out.push(b'\n');
    }
}

/// A kernel (`stack()`) or user (`ustack()`) stack as trace output. An empty user stack
/// prints nothing at all (`dt_print_ustack` returns before its newline).
pub fn stack(out: &mut Vec<u8>, frames: &[String], user: bool) {
    if user && frames.is_empty() {
        return;
    }
    write_stack(out, frames, STACK_INDENT, "%s");
}

/// `dt_print_rawbytes`: the hex dump used by `tracemem()` and for non-string data.
pub fn rawbytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    out.extend_from_slice(b"\n           ");
    for c in b"0123456789abcdef" {
        out.extend_from_slice(&[b' ', b' ', *c]);
    }
    out.extend_from_slice(b"  0123456789abcdef\n");
    for (row, chunk) in bytes.chunks(16).enumerate() {
        cformat(out, "     %5x:", CArg::UInt((row * 16) as u32));
        for b in chunk {
            cformat(out, " %02x", CArg::UInt(*b as u32));
        }
        for _ in chunk.len()..16 {
            out.extend_from_slice(b"   ");
        }
        out.extend_from_slice(b"  ");
        for &b in chunk {
            out.push(if (b' '..=b'~').contains(&b) { b } else { b'.' });
        }
        out.push(b'\n');
    }
}

/// C-locale `isprint || isspace || '\b' || '\a'` on a (signed) char.
fn printable(c: u8) -> bool {
    (b' '..=b'~').contains(&c) || matches!(c, b'\t' | b'\n' | 11 | 12 | b'\r' | 8 | 7)
}

/// `dt_print_bytes`: a buffer that is a printable string followed only by NULs (or that
/// is entirely printable) prints as a string, `"  %-<width>s"` (`"%s"` when quiet and
/// NUL-terminated); anything else is a hex dump.
pub fn bytes(out: &mut Vec<u8>, buf: &[u8], width: usize, quiet: bool) {
    if buf.is_empty() {
        return;
    }
    for (i, &c) in buf.iter().enumerate() {
        if printable(c) {
            continue;
        }
        if c == 0 && i > 0 {
            if buf[i + 1..].iter().any(|&b| b != 0) {
                break;
            }
            if quiet {
                out.extend_from_slice(&buf[..i]);
            } else {
                cformat(out, &format!("  %-{width}s"), CArg::Str(&buf[..i]));
            }
            return;
        }
        return rawbytes(out, buf);
    }
    if buf.iter().all(|&c| printable(c)) {
        // All printable, no terminating NUL: a string even in quiet mode (as DTrace does).
        cformat(out, &format!("  %-{width}s"), CArg::Str(buf));
        return;
    }
    rawbytes(out, buf);
}

/// The record buffer DTrace holds for a string aggregation key: the text padded with NULs to
/// `strsize + 1` bytes (never cut: the runtime already applied strsize).
pub fn string_buffer(s: &str, strsize: usize) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    if b.len() < strsize + 1 {
        b.resize(strsize + 1, 0);
    }
    b
}

/// Format an integer with one of DTrace's trace layouts.
fn int(out: &mut Vec<u8>, value: i64, size: u8, signed: bool, quiet: bool) {
    let w = |n: usize| {
        if quiet {
            String::from("%")
        } else {
            format!(" %{n}")
        }
    };
    match (signed, size) {
        (true, 1) => cformat(out, &(w(3) + "hhd"), CArg::Int(value as i8 as i32)),
        (true, 2) => cformat(out, &(w(5) + "hd"), CArg::Int(value as i16 as i32)),
        (true, 4) => cformat(out, &(w(10) + "d"), CArg::Int(value as i32)),
        (true, _) => cformat(out, &(w(19) + "lld"), CArg::LongLong(value)),
        (false, 1) => cformat(out, &(w(3) + "hhu"), CArg::UInt(value as u8 as u32)),
        (false, 2) => cformat(out, &(w(5) + "hu"), CArg::UInt(value as u16 as u32)),
        (false, 4) => cformat(out, &(w(10) + "u"), CArg::UInt(value as u32)),
        (false, _) => cformat(out, &(w(20) + "llu"), CArg::ULongLong(value as u64)),
    }
}

/// `trace(v)`'s output (dtrace-utils `dt_print_trace`). Strings print as `"  %-33s"`
/// (`"%s"` when quiet); byte buffers go through `dt_print_bytes`'s printable test.
pub fn trace_value(out: &mut Vec<u8>, v: &Value, quiet: bool) {
    match v {
        Value::Int {
            value,
            size,
            signed,
        } => int(out, *value, *size, *signed, quiet),
        // dtrace-utils prints string records directly (no printable test).
        Value::Str(s) if quiet => cformat(out, "%s", CArg::Str(s.as_bytes())),
        Value::Str(s) => cformat(out, "  %-33s", CArg::Str(s.as_bytes())),
        Value::Bytes(b) => bytes(out, b, 33, quiet),
        Value::Stack(frames) => stack(out, frames, false),
        // dt_print_sym/dt_print_usym use "  %-50s" whether quiet or not.
        Value::Sym(s) => cformat(out, "  %-50s", CArg::Str(s.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Value, quiet: bool) -> String {
        let mut o = Vec::new();
        trace_value(&mut o, &v, quiet);
        String::from_utf8(o).unwrap()
    }
    fn int(value: i64, size: u8, signed: bool) -> Value {
        Value::Int {
            value,
            size,
            signed,
        }
    }

    #[test]
    fn integer_layouts() {
        assert_eq!(t(int(0, 8, true), false), "                   0");
        assert_eq!(t(int(-1, 8, false), false), " 18446744073709551615");
        assert_eq!(t(int(-1, 4, true), false), "         -1");
        assert_eq!(t(int(-1, 4, false), false), " 4294967295");
        assert_eq!(t(int(-2, 2, true), false), "    -2");
        assert_eq!(t(int(-2, 2, false), false), " 65534");
        assert_eq!(t(int(-2, 1, true), false), "  -2");
        assert_eq!(t(int(-2, 1, false), false), " 254");
        // aggs/tst.signedkeys: quiet trace of char/short/int/long long -2.
        assert_eq!(t(int(-2, 1, true), true), "-2");
        assert_eq!(t(int(-2, 2, true), true), "-2");
        assert_eq!(t(int(-2, 4, true), true), "-2");
        assert_eq!(t(int(-2, 8, true), true), "-2");
        assert_eq!(t(int(-2, 8, false), true), "18446744073709551614");
    }

    #[test]
    fn string_layouts() {
        // trace/tst.string, after the row prefix.
        let out = t(Value::Str("this".into()), false)
            + &t(Value::Str(" %should work.\n".into()), false)
            + &t(
                Value::Str("%don't w%orry -- this won't cause a %segfault.\n".into()),
                false,
            );
        assert_eq!(
            out,
            "  this                                %should work.\n                    \
             %don't w%orry -- this won't cause a %segfault.\n"
        );
        assert_eq!(
            t(Value::Str("hello world".into()), false),
            "  hello world                      "
        );
        assert_eq!(t(Value::Str("hi".into()), true), "hi");
    }

    #[test]
    fn hex_dumps() {
        let mut o = Vec::new();
        rawbytes(&mut o, b"hello, world\x01\x02\x03\x04\xffA");
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "\n             0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f  0123456789abcdef\n\
             \x20        0: 68 65 6c 6c 6f 2c 20 77 6f 72 6c 64 01 02 03 04  hello, world....\n\
             \x20       10: ff 41                                            .A\n"
        );
        // Strings print as they are; non-string buffers that are not text are dumped.
        assert_eq!(t(Value::Str("a\x01".into()), true), "a\x01");
        assert_eq!(t(Value::Str(String::new()), false), " ".repeat(35));
        assert!(t(Value::Bytes(vec![1, 2, 0]), true).starts_with("\n             0  1"));
        assert!(t(Value::Bytes(vec![0; 17]), true).contains("       10: 00 "));
        // Bytes that form a string print as one.
        assert_eq!(
            t(Value::Bytes(b"abc\0\0".to_vec()), false),
            format!("  abc{}", " ".repeat(30))
        );
        assert_eq!(
            t(Value::Bytes(b"abc".to_vec()), true),
            format!("  abc{}", " ".repeat(30))
        );
    }

    #[test]
    fn stack_layouts() {
        let frames = vec![
            "vmlinux`do_sys_open+0x10".to_string(),
            "0xffff1234".to_string(),
        ];
        assert_eq!(
            t(Value::Stack(frames.clone()), false),
            format!(
                "\n{0}vmlinux`do_sys_open+0x10\n{0}0xffff1234\n",
                " ".repeat(14)
            )
        );
        let mut o = Vec::new();
        stack(&mut o, &[], true);
        assert!(o.is_empty());
        stack(&mut o, &[], false);
        assert_eq!(o, b"\n");
        assert_eq!(
            t(Value::Sym("vmlinux`foo".into()), true),
            format!("  vmlinux`foo{}", " ".repeat(39))
        );
    }
}
