//! Tests of the printf engine (`printf.rs`) against DTrace's printf test expectations.

use super::cfmt::{time_t, time_y};
use tracer_common::Value;
use tracer_format::{Format, FormatError};

/// Parse `f` and render it with `args`.
fn format(f: &str, args: &[Value]) -> Result<String, FormatError> {
    super::printf::format(&Format::parse(f)?, args)
}

fn i(v: i64) -> Value {
    Value::Int {
        value: v,
        size: 4,
        signed: true,
    }
}
fn i8b(v: i64) -> Value {
    Value::Int {
        value: v,
        size: 8,
        signed: true,
    }
}
fn u4(v: i64) -> Value {
    Value::Int {
        value: v,
        size: 4,
        signed: false,
    }
}
fn s(v: &str) -> Value {
    Value::Str(v.into())
}

#[test]
fn printf_widths() {
    // printf/tst.widths: "%0d".."%5d" then "%*d" with x = 0..5.
    let mut out = String::from("\n");
    for f in ["%0d\n", "%1d\n", "%2d\n", "%3d\n", "%4d\n", "%5d\n"] {
        out += &format(f, &[i(1)]).unwrap();
    }
    for x in 0..6 {
        out += &format("%*d\n", &[i(x), i(1)]).unwrap();
    }
    assert_eq!(
        out,
        "\n1\n1\n 1\n  1\n   1\n    1\n1\n1\n 1\n  1\n   1\n    1\n"
    );
}

#[test]
fn printf_flags() {
    // printf/tst.flags (the %#8x line is a pointer in the .r file).
    let out = format(
        "# %#8x\n0 %08x\n- %-8x\n+ %+8d\n  % 8d\n",
        &[i(0x123), i(0x123), i(0x123), i(123), i(123)],
    )
    .unwrap();
    assert_eq!(
        out,
        "#    0x123\n0 00000123\n- 123     \n+     +123\n       123\n"
    );
}

#[test]
fn printf_basics() {
    // printf/tst.basics (minus %a): i = 'a'.
    let a = i(97);
    let ushort = Value::Int {
        value: 97,
        size: 2,
        signed: false,
    };
    let short = Value::Int {
        value: 97,
        size: 2,
        signed: true,
    };
    let long = i8b(97);
    let ulong = Value::Int {
        value: 97,
        size: 8,
        signed: false,
    };
    let cases: &[(&str, &Value, &str)] = &[
        ("%c", &a, "a"),
        ("%d", &a, "97"),
        ("%hd", &short, "97"),
        ("%hi", &short, "97"),
        ("%ho", &ushort, "141"),
        ("%hu", &ushort, "97"),
        ("%hx", &ushort, "61"),
        ("%hX", &ushort, "61"),
        ("%i", &a, "97"),
        ("%lc", &a, "a"),
        ("%ld", &long, "97"),
        ("%li", &long, "97"),
        ("%lo", &ulong, "141"),
        ("%lu", &ulong, "97"),
        ("%lx", &ulong, "61"),
        ("%lX", &ulong, "61"),
        ("%o", &u4(97), "141"),
        ("%p", &ulong, "61"),
        ("%u", &u4(97), "97"),
        ("%x", &u4(97), "61"),
        ("%X", &u4(97), "61"),
    ];
    for (f, v, want) in cases {
        assert_eq!(format(f, &[(*v).clone()]).unwrap(), *want, "{f}");
    }
    assert_eq!(format("%s", &[s("hello")]).unwrap(), "hello");
    assert_eq!(format("%%a = %s", &[s("x")]).unwrap(), "%a = x");
}

#[test]
fn sizes_and_signedness() {
    assert_eq!(format("%u", &[i(-1)]).unwrap(), "4294967295");
    assert_eq!(format("%x", &[i8b(-1)]).unwrap(), "ffffffffffffffff");
    assert_eq!(format("%x", &[i(-1)]).unwrap(), "ffffffff");
    assert_eq!(
        format(
            "%d",
            &[Value::Int {
                value: -1,
                size: 4,
                signed: false
            }]
        )
        .unwrap(),
        "4294967295"
    );
    assert_eq!(
        format(
            "%d",
            &[Value::Int {
                value: -2,
                size: 1,
                signed: true
            }]
        )
        .unwrap(),
        "-2"
    );
    assert_eq!(
        format("%d", &[i8b(i64::MIN)]).unwrap(),
        "-9223372036854775808"
    );
    assert_eq!(format("%s", &[i8b(-5)]).unwrap(), "-5");
    assert!(format("%d", &[s("x")]).is_err());
    assert_eq!(format("%.0d|%.3d", &[i(0), i(7)]).unwrap(), "0|007");
    assert_eq!(format("%-*d|", &[i(-4), i(7)]).unwrap(), "7   |");
    assert_eq!(format("%*d|", &[i(-4), i(7)]).unwrap(), "7   |");
    assert_eq!(format("%?d|", &[i(7)]).unwrap(), "               7|");
    assert_eq!(format("%.*s|", &[i(2), s("hello")]).unwrap(), "he|");
    assert_eq!(format("%5c|%-3c|", &[i(65), i(66)]).unwrap(), "    A|B  |");
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        format("[%-6s][%6s]", &[s("ab"), s("cd")]).unwrap(),
        "[ab    ][    cd]"
    );
    assert_eq!(
        format("%S", &[s("a\tb\n\"\\\x01 é")]).unwrap(),
        "a\\tb\\n\\\"\\\\\\001 \\303\\251\\0"
    );
    assert_eq!(format("[%-8S]", &[s("hi")]).unwrap(), "[hi\\0    ]");
    assert_eq!(
        format("%S", &[Value::Bytes(b"x\0y".to_vec())]).unwrap(),
        "x\\0"
    );
    assert_eq!(format("%C%C", &[i(10), i(65)]).unwrap(), "\\nA");
    assert_eq!(
        format(
            "%a %A",
            &[Value::Sym("vmlinux`max_pfn".into()), i8b(0x1000)]
        )
        .unwrap(),
        "vmlinux`max_pfn 0x1000"
    );
}

#[test]
fn floats() {
    let d = |f: f64| Value::Int {
        value: f.to_bits() as i64,
        size: 8,
        signed: true,
    };
    let fl = |f: f32| Value::Int {
        value: f.to_bits() as i64,
        size: 4,
        signed: true,
    };
    assert_eq!(
        format("%f %e %g %G", &[d(1.5), d(1234.5), d(0.0001), d(1e20)]).unwrap(),
        "1.500000 1.234500e+03 0.0001 1E+20"
    );
    assert_eq!(format("%.2f", &[fl(2.25)]).unwrap(), "2.25");
}

#[test]
fn stacks() {
    let st = Value::Stack(vec!["vmlinux`a+0x1".into(), "vmlinux`b".into()]);
    assert_eq!(
        format("%k|", std::slice::from_ref(&st)).unwrap(),
        "\nvmlinux`a+0x1\nvmlinux`b\n|"
    );
    assert_eq!(
        format("%-4k|", &[st]).unwrap(),
        "\n    vmlinux`a+0x1\n    vmlinux`b\n|"
    );
}

#[test]
fn printf_rejects_agg_and_narrow_ints() {
    assert_eq!(
        format("%@d", &[]).unwrap_err().0,
        "%@ conversion requires an aggregation and is not for use with printf( )"
    );
    assert_eq!(
        format(
            "%hhd %hhu",
            &[
                Value::Int {
                    value: -1,
                    size: 1,
                    signed: true
                },
                Value::Int {
                    value: 255,
                    size: 1,
                    signed: false
                }
            ]
        )
        .unwrap(),
        "-1 255"
    );
}

#[test]
fn times() {
    let y = format(
        "%Y",
        &[Value::Int {
            value: 0,
            size: 8,
            signed: false,
        }],
    )
    .unwrap();
    assert_eq!(y, time_y(0));
    assert_eq!(format("%T", &[i8b(0)]).unwrap(), time_t(0));
    assert_eq!(format("%25Y|", &[i8b(0)]).unwrap().len(), 26);
}
