//! Tests of `aggregate.rs` against DTrace's expected outputs (dtrace-utils `.r` files and
//! illumos `.out` files), with hand-built snapshots.

use super::aggregate::*;
use super::{Format, Printer, TextPrinter};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracer_common::agg::{lquantize_bucket, quantize_bucket, QUANTIZE_NBUCKETS};
use tracer_common::record::Field;
use tracer_common::{AggDesc, AggEntry, AggFunc, AggSnapshot, AggValue, FieldType, Options, Value};

fn snap(name: &str, func: AggFunc, entries: Vec<(Vec<Value>, AggValue)>) -> AggSnapshot {
    let keys = entries
        .first()
        .map(|(k, _)| {
            k.iter()
                .map(|v| Field {
                    offset: 0,
                    ty: match v {
                        Value::Int { size, signed, .. } => FieldType::Int {
                            size: *size,
                            signed: *signed,
                        },
                        Value::Str(_) => FieldType::Str { size: 256 },
                        Value::Stack(_) => FieldType::KStack { depth: 20 },
                        Value::Sym(_) => FieldType::KSym,
                        Value::Bytes(b) => FieldType::Bytes {
                            size: b.len() as u32,
                        },
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    AggSnapshot {
        desc: AggDesc {
            name: name.into(),
            func,
            map: String::new(),
            keys,
            key_size: 8,
            max_entries: 0,
        },
        entries: entries
            .into_iter()
            .map(|(keys, value)| AggEntry { keys, value })
            .collect(),
        normal: 1,
    }
}
fn i4(v: i64) -> Value {
    Value::Int {
        value: v,
        size: 4,
        signed: true,
    }
}
fn s(v: &str) -> Value {
    Value::Str(v.into())
}
fn sc(v: i64) -> AggValue {
    AggValue::Scalar(v)
}
fn q(values: &[(i64, i64)]) -> AggValue {
    let mut d = vec![0i64; QUANTIZE_NBUCKETS as usize];
    for &(v, incr) in values {
        let b = quantize_bucket(v) as usize;
        d[b] = d[b].wrapping_add(incr);
    }
    AggValue::Hist(d)
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run `f` on a quiet text Printer with `opts` and return everything printed.
fn run(opts: Options, f: impl FnOnce(&mut dyn Printer)) -> String {
    let sink = Sink::default();
    let mut p = TextPrinter::new(
        Box::new(sink.clone()),
        &Options {
            quiet: true,
            ..opts
        },
    );
    f(&mut p);
    let out = sink.0.lock().unwrap().clone();
    String::from_utf8(out).unwrap()
}
fn fmt(s: &str) -> Format {
    Format::parse(s).unwrap()
}
fn quiet() -> Options {
    Options {
        quiet: true,
        ..Options::default()
    }
}

const H: &str = "           value  ------------- Distribution ------------- count    \n";

#[test]
fn scalar_dumps() {
    // aggs/tst.sum, tst.avg, tst.min, tst.stddev.
    let sum = snap("", AggFunc::Sum, vec![(vec![], sc(4500))]);
    assert_eq!(
        run(quiet(), |p| p.final_dump(&[&sum])),
        "\n             4500\n"
    );
    let avg = snap(
        "",
        AggFunc::Avg,
        vec![(
            vec![],
            AggValue::Avg {
                count: 10,
                sum: 4500,
            },
        )],
    );
    assert_eq!(
        run(quiet(), |p| p.final_dump(&[&avg])),
        "\n              450\n"
    );
    let sd = |sign: i64| {
        let (mut count, mut sum, mut sumsq) = (0u64, 0i64, 0u128);
        for k in 0..10 {
            let v = sign * (5_000_000_000 + 100 * k);
            count += 1;
            sum += v;
            sumsq += (v as i128 * v as i128) as u128;
        }
        AggValue::Stddev { count, sum, sumsq }
    };
    let a = snap("a", AggFunc::Stddev, vec![(vec![], sd(1))]);
    let b = snap("b", AggFunc::Stddev, vec![(vec![], sd(-1))]);
    assert_eq!(
        run(quiet(), |p| p.final_dump(&[&a, &b])),
        "\n              287\n              287\n"
    );
}

#[test]
fn normalize() {
    // aggs/tst.normalize: @func[i % 5] = sum(i * 100), i < 20; normalize(@func, 5).
    let mut n = snap(
        "func",
        AggFunc::Sum,
        (0..5).map(|k| (vec![i4(k)], sc(400 * k + 3000))).collect(),
    );
    n.normal = 5;
    let got = run(quiet(), |p| {
        p.printf(&fmt("normalized data:\n"), &[]).unwrap();
        p.final_dump(&[&n]);
    });
    assert_eq!(
        got,
        "normalized data:\n\n        0              600\n        1              680\n        2              760\n\
         \x20       3              840\n        4              920\n"
    );
}

#[test]
fn clear_blocks_linux_widths() {
    // aggs/tst.clear: int keys print " %8d" on Linux (illumos widens to " %16lld").
    let before = snap(
        "",
        AggFunc::Sum,
        (0..5).map(|k| (vec![i4(k)], sc(500 + 200 * k))).collect(),
    );
    let cleared = snap(
        "",
        AggFunc::Sum,
        (0..5).map(|k| (vec![i4(k)], sc(0))).collect(),
    );
    let got = run(quiet(), |p| {
        p.printf(&fmt("Aggregation data before clear():\n"), &[])
            .unwrap();
        p.printa(None, &[&before]).unwrap();
        p.printf(&fmt("Aggregation data after clear():\n"), &[])
            .unwrap();
        p.printa(None, &[&cleared]).unwrap();
        p.final_dump(&[&cleared]);
    });
    assert_eq!(
        got,
        "Aggregation data before clear():\n\n        0              500\n        1              700\n\
         \x20       2              900\n        3             1100\n        4             1300\n\
         Aggregation data after clear():\n\n        0                0\n        1                0\n\
         \x20       2                0\n        3                0\n        4                0\n\n"
    );
    let wide = snap("", AggFunc::Sum, vec![(vec![Value::int(0)], sc(500))]);
    assert_eq!(
        run(quiet(), |p| p.final_dump(&[&wide])),
        "\n                0              500\n"
    );
}

#[test]
fn keyed_quantize_and_lquantize() {
    // aggs/tst.quantize: @a[i] = quantize(i), i = 0, 100, ..., 900 (int i).
    let entries = (0..10)
        .rev()
        .map(|k| (vec![i4(k * 100)], q(&[(k * 100, 1)])))
        .collect();
    let got = run(quiet(), |p| {
        p.final_dump(&[&snap("a", AggFunc::Quantize, entries)])
    });
    let bar = "@".repeat(40);
    let none = " ".repeat(40);
    assert!(got.starts_with(&format!(
        "\n        0\n{H}              -1 |{none} 0        \n               0 |{bar} 1        \n\
         \x20              1 |{none} 0        \n\n      100\n{H}              32 |{none} 0        \n\
         \x20             64 |{bar} 1        \n             128 |{none} 0        \n\n      200\n"
    )));
    // aggs/tst.lquantize: lquantize(i, -100, 1100, 100).
    let f = AggFunc::Lquantize {
        low: -100,
        high: 1100,
        step: 100,
    };
    let entries = (0..10)
        .map(|k| {
            let mut d = vec![0i64; 14];
            d[lquantize_bucket(k * 100, -100, 1100, 100) as usize] = 1;
            (vec![i4(k * 100)], AggValue::Hist(d))
        })
        .collect();
    let got = run(quiet(), |p| p.final_dump(&[&snap("a", f, entries)]));
    assert!(got.starts_with(&format!(
        "\n        0\n{H}            -100 |{none} 0        \n               0 |{bar} 1        \n\
         \x20            100 |{none} 0        \n\n"
    )));
}

#[test]
fn negative_quantize_with_string_keys() {
    // aggs/tst.negquant (illumos .out, verbatim).
    let max = i64::MAX;
    let chain = |start: i64| {
        let (mut i, mut v, mut d) = (1i64, start, Vec::new());
        for _ in 0..4 {
            d.push((i, v));
            i <<= 1;
            v >>= 1;
        }
        q(&d)
    };
    let entries = vec![
        (vec![s("j-church")], q(&[(1, 100), (1, -99), (1, -1)])),
        (vec![s("k-ingleside")], q(&[(1, -123)])),
        (
            vec![s("l-taraval")],
            q(&[(0, -123), (-1, -123), (1, 123), (1, 123)]),
        ),
        (
            vec![s("m-oceanview")],
            q(&[(1, max), (1, 1), (2, max), (8, 400000)]),
        ),
        (
            vec![s("n-judah")],
            q(&[(1, 123), (2, 123), (2, 123), (2, 1)]),
        ),
        (vec![s("f-market")], chain(max)),
        (vec![s("s-castro")], chain(max - 3)),
    ];
    let got = run(quiet(), |p| {
        p.final_dump(&[&snap("", AggFunc::Quantize, entries)])
    });
    let want = "
  k-ingleside                                       
           value  ------------- Distribution ------------- count    
               0                                         | 0        
               1 @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@| -123     
               2                                         | 0        

  j-church                                          
           value  ------------- Distribution ------------- count    
              -1 |                                         0        
               0 |                                         0        
               1 |                                         0        

  l-taraval                                         
           value  ------------- Distribution ------------- count    
              -2                     |                     0        
              -1                @@@@@|                     -123     
               0                @@@@@|                     -123     
               1                     |@@@@@@@@@@           246      
               2                     |                     0        

  n-judah                                           
           value  ------------- Distribution ------------- count    
               0 |                                         0        
               1 |@@@@@@@@@@@@@                            123      
               2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@              247      
               4 |                                         0        

  m-oceanview                                       
           value  ------------- Distribution ------------- count    
               0                     |                     0        
               1           @@@@@@@@@@|                     -9223372036854775808
               2                     |@@@@@@@@@@           9223372036854775807
               4                     |                     0        
               8                     |                     400000   
              16                     |                     0        

  s-castro                                          
           value  ------------- Distribution ------------- count    
               0 |                                         0        
               1 |@@@@@@@@@@@@@@@@@@@@@                    9223372036854775804
               2 |@@@@@@@@@@@                              4611686018427387902
               4 |@@@@@                                    2305843009213693951
               8 |@@@                                      1152921504606846975
              16 |                                         0        

  f-market                                          
           value  ------------- Distribution ------------- count    
               0 |                                         0        
               1 |@@@@@@@@@@@@@@@@@@@@@                    9223372036854775807
               2 |@@@@@@@@@@@                              4611686018427387903
               4 |@@@@@                                    2305843009213693951
               8 |@@@                                      1152921504606846975
              16 |                                         0        

";
    assert_eq!(got, want);
}

#[test]
fn printa_basics() {
    // printa/tst.basics (dtrace-utils), every aggregating function through %@u / %@d.
    // (@h, llquantize(320, 10, 0, 5, 5, 8), uses dtrace-utils' own llquantize layout with
    // steps < factor, which illumos rejects; tracer implements the illumos layout.)
    let mut c = vec![0i64; 11];
    c[lquantize_bucket(1, 1, 10, 1) as usize] = 1;
    let a = snap(
        "a",
        AggFunc::Avg,
        vec![(vec![], AggValue::Avg { count: 1, sum: 1 })],
    );
    let b = snap("b", AggFunc::Count, vec![(vec![], sc(1))]);
    let c = snap(
        "c",
        AggFunc::Lquantize {
            low: 1,
            high: 10,
            step: 1,
        },
        vec![(vec![], AggValue::Hist(c))],
    );
    let d = snap("d", AggFunc::Max, vec![(vec![], sc(1))]);
    let e = snap("e", AggFunc::Min, vec![(vec![], sc(1))]);
    let f = snap("f", AggFunc::Sum, vec![(vec![], sc(1))]);
    let g = snap("g", AggFunc::Quantize, vec![(vec![], q(&[(1, 1)]))]);
    let i = snap(
        "i",
        AggFunc::Stddev,
        vec![(
            vec![],
            AggValue::Stddev {
                count: 2,
                sum: 30,
                sumsq: 500,
            },
        )],
    );
    let got = run(quiet(), |p| {
        for (text, agg) in [
            ("@a = %@u\n", &a),
            ("@b = %@u\n", &b),
            ("@c = %@d\n", &c),
            ("@d = %@u\n", &d),
            ("@e = %@u\n", &e),
            ("@f = %@u\n", &f),
            ("@g = %@d\n", &g),
            ("@i = %@d\n", &i),
        ] {
            p.printa(Some(&fmt(text)), &[agg]).unwrap();
        }
        p.final_dump(&[&a, &b, &c, &d, &e, &f, &g, &i]);
    });
    let bar = "@".repeat(40);
    let none = " ".repeat(40);
    assert_eq!(
        got,
        format!(
            "@a = 1\n@b = 1\n@c = \n{H}             < 1 |{none} 0        \n               1 |{bar} 1        \n\
             \x20              2 |{none} 0        \n\n@d = 1\n@e = 1\n@f = 1\n@g = \n{H}               0 |{none} 0        \n\
             \x20              1 |{bar} 1        \n               2 |{none} 0        \n\n@i = 5\n\n"
        )
    );
}

#[test]
fn printa_tuple_and_dynwidth() {
    // printa/tst.tuple.
    let a = snap(
        "a",
        AggFunc::Count,
        vec![((1..=5).map(i4).collect(), sc(1))],
    );
    let got = run(quiet(), |p| {
        p.printf(&fmt("\n"), &[]).unwrap();
        for text in [
            "%@u: -\n",
            "%@u: %d\n",
            "%@u: %d %d\n",
            "%@u: %d %d %d\n",
            "%@u: %d %d %d %d\n",
            "%@u: %d %d %d %d %d\n",
        ] {
            p.printa(Some(&fmt(text)), &[&a]).unwrap();
        }
        p.final_dump(&[&a]);
    });
    assert_eq!(
        got,
        "\n1: -\n1: 1\n1: 1 2\n1: 1 2 3\n1: 1 2 3 4\n1: 1 2 3 4 5\n\n"
    );
    // printa/tst.dynwidth: the first key is the width of the second.
    let d = snap(
        "",
        AggFunc::Sum,
        vec![
            (vec![i4(-10), i4(200)], sc(2)),
            (vec![i4(10), i4(100)], sc(1)),
        ],
    );
    let got = run(quiet(), |p| {
        p.printa(Some(&fmt("-->%-*d<--\n")), &[&d]).unwrap();
        p.printa(Some(&fmt("-->%*d<--\n")), &[&d]).unwrap();
    });
    assert_eq!(
        got,
        "-->100       <--\n-->200       <--\n-->       100<--\n-->200       <--\n"
    );
    // More key conversions than keys is an error.
    assert!(run(quiet(), |p| assert!(p
        .printa(Some(&fmt("%d %d %d\n")), &[&d])
        .is_err()))
    .is_empty());
}

#[test]
fn signed_keys_sort_unsigned_and_print_by_width() {
    // aggs/tst.signedkeys, with aggsortkey.
    let mk = |name: &str, size: u8| {
        let entries = [-2i64, -1, 0, 1, 2]
            .iter()
            .map(|&v| {
                (
                    vec![Value::Int {
                        value: v,
                        size,
                        signed: true,
                    }],
                    sc(v),
                )
            })
            .collect();
        snap(name, AggFunc::Sum, entries)
    };
    let (a, b, c, d) = (mk("i8", 1), mk("i16", 2), mk("i32", 4), mk("i64", 8));
    let got = run(
        Options {
            aggsortkey: true,
            ..quiet()
        },
        |p| p.final_dump(&[&a, &b, &c, &d]),
    );
    assert_eq!(
        got,
        "\n   0                0\n   1                1\n   2                2\n 254               -2\n 255               -1\n\
         \x20    0                0\n     1                1\n     2                2\n 65534               -2\n 65535               -1\n\
         \x20       0                0\n        1                1\n        2                2\n       -2               -2\n       -1               -1\n\
         \x20               0                0\n                1                1\n                2                2\n\
         \x20              -2               -2\n               -1               -1\n"
    );
}

#[test]
fn sort_options() {
    let a = snap(
        "",
        AggFunc::Count,
        vec![
            (vec![s("b"), i4(1)], sc(3)),
            (vec![s("a"), i4(2)], sc(3)),
            (vec![s("c"), i4(0)], sc(1)),
        ],
    );
    let order = |o: SortOpts| -> Vec<String> {
        sorted(&a, &o)
            .iter()
            .map(|e| format!("{:?}", e.keys[0]))
            .collect()
    };
    let str_ = |v: &[&str]| v.iter().map(|x| format!("{:?}", s(x))).collect::<Vec<_>>();
    assert_eq!(order(SortOpts::default()), str_(&["c", "a", "b"]));
    assert_eq!(
        order(SortOpts {
            rev: true,
            ..Default::default()
        }),
        str_(&["b", "a", "c"])
    );
    assert_eq!(
        order(SortOpts {
            key: true,
            ..Default::default()
        }),
        str_(&["a", "b", "c"])
    );
    assert_eq!(
        order(SortOpts {
            key: true,
            keypos: 1,
            ..Default::default()
        }),
        str_(&["c", "b", "a"])
    );
    assert_eq!(
        order(SortOpts {
            key: true,
            keypos: 7,
            ..Default::default()
        }),
        str_(&["a", "b", "c"])
    );
    // The final dump lists aggregations in reverse order under aggsortrev.
    let x = snap("x", AggFunc::Count, vec![(vec![], sc(1))]);
    let y = snap("y", AggFunc::Count, vec![(vec![], sc(2))]);
    let got = run(
        Options {
            aggsortrev: true,
            ..quiet()
        },
        |p| p.final_dump(&[&x, &y]),
    );
    assert_eq!(got, "\n                2\n                1\n");
}

#[test]
fn joined_printa() {
    // printa(fmt, @a, @b): keys joined, a missing entry prints 0, %@ conversions take the
    // aggregations in order; without a format, the default layout with one column each.
    let a = snap(
        "a",
        AggFunc::Count,
        vec![(vec![s("x")], sc(5)), (vec![s("y")], sc(1))],
    );
    let b = snap(
        "b",
        AggFunc::Sum,
        vec![(vec![s("y")], sc(10)), (vec![s("z")], sc(7))],
    );
    let got = run(quiet(), |p| {
        p.printa(Some(&fmt("%s %@d %@d\n")), &[&a, &b]).unwrap()
    });
    assert_eq!(got, "z 0 7\ny 1 10\nx 5 0\n");
    let got = run(
        Options {
            aggsortpos: 1,
            ..quiet()
        },
        |p| p.printa(Some(&fmt("%s %@d %@d\n")), &[&a, &b]).unwrap(),
    );
    assert_eq!(got, "x 5 0\nz 0 7\ny 1 10\n");
    let got = run(quiet(), |p| p.printa(None, &[&a, &b]).unwrap());
    let pad = |k: &str| format!("  {k:<50}");
    assert_eq!(
        got,
        format!(
            "\n{}                0                7\n{}                1               10\n{}                5                0\n",
            pad("z"),
            pad("y"),
            pad("x")
        )
    );
    // printa(@a, @a): the same data in both columns.
    let got = run(quiet(), |p| {
        p.printa(Some(&fmt("%s %@d %@d\n")), &[&a, &a]).unwrap()
    });
    assert_eq!(got, "y 1 1\nx 5 5\n");
    // Both aggregations count as printed.
    let got = run(quiet(), |p| {
        p.printa(Some(&fmt("%s\n")), &[&a, &b]).unwrap();
        p.final_dump(&[&a, &b]);
    });
    assert_eq!(got, "z\ny\nx\n\n");
}

#[test]
fn stack_and_symbol_keys() {
    let st = Value::Stack(vec!["vmlinux`a+0x1".into(), "vmlinux`b+0x2".into()]);
    let a = snap("", AggFunc::Count, vec![(vec![st], sc(3))]);
    let got = run(quiet(), |p| p.final_dump(&[&a]));
    let ind = " ".repeat(14);
    assert_eq!(
        got,
        format!("\n\n{ind}vmlinux`a+0x1\n{ind}vmlinux`b+0x2\n                3\n")
    );
    let sym = snap(
        "",
        AggFunc::Count,
        vec![(vec![Value::Sym("vmlinux`schedule".into())], sc(4))],
    );
    let got = run(quiet(), |p| p.final_dump(&[&sym]));
    assert_eq!(
        got,
        format!("\n  {:<50}                4\n", "vmlinux`schedule")
    );
    let str_key = snap("", AggFunc::Count, vec![(vec![s("bash")], sc(12))]);
    let got = run(quiet(), |p| p.final_dump(&[&str_key]));
    assert_eq!(
        got,
        format!("\n  bash{}               12\n", " ".repeat(46))
    );
}

#[test]
fn value_helpers() {
    assert_eq!(stddev(2, 30, 500, 1), 5);
    assert_eq!(stddev(0, 0, 0, 1), 0);
    // Exact 128-bit arithmetic where f64 would round (variance 2^60 + 2^31 + 1).
    let v = (1u128 << 60) + (1 << 31) + 1;
    assert_eq!(stddev(1, 0, v, 1), (1u64 << 30) + 1);
    assert_eq!(average(3, -10, 1), -3);
    assert_eq!(average(0, 5, 1), 0);
    let mut o = Vec::new();
    print_value(&mut o, &AggFunc::Sum, &AggValue::Scalar(-6), 1);
    assert_eq!(o, b"               -6");
}
