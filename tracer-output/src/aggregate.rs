//! Printing aggregations: DTrace's default layout (`dt_print_aggs` / `dt_print_datum`),
//! `printa()` with a format (`dtrace_fprinta` / `dt_printf_format`), multi-aggregation
//! joins (`dtrace_aggregate_walk_joined`) and the sort orders of `dt_aggregate.c`.
//!
//! Default layout, per entry: each key (integers by size `" %16lld"`, `" %8d"`, `" %5d"`,
//! `" %3d"`, the 1- and 2-byte ones zero-extended as dtrace-utils prints them; strings
//! `"  %-50s"`; stacks as a newline plus indented frames), then each value (`" %16lld"`,
//! stddev `" %16llu"`, histograms as in `histogram.rs`), then `"\n"`.
//!
//! Sorting: by value then keys (ascending), `aggsortkey` by keys only, `aggsortrev`
//! reverses, `aggsortkeypos` rotates which key compares first, `aggsortpos` picks which
//! aggregation of a joined printa compares first. Integer keys compare as unsigned values
//! of their size, as DTrace does.

use super::histogram::{self, div_normal};
use super::printf::{self, format_int, Spec};
use super::trace::{self, write_stack, STACK_INDENT};
use std::cmp::Ordering;
use tracer_common::{AggEntry, AggFunc, AggSnapshot, AggValue, FieldType, Options, Value};
use tracer_format::{Conv, Format, FormatError, Render};

/// The aggregation sort options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SortOpts {
    pub key: bool,
    pub rev: bool,
    pub keypos: u32,
    pub pos: u32,
}

impl SortOpts {
    pub fn from_options(o: &Options) -> SortOpts {
        SortOpts {
            key: o.aggsortkey,
            rev: o.aggsortrev,
            keypos: o.aggsortkeypos,
            pos: o.aggsortpos,
        }
    }
}

/// DTrace's `dt_stddev`: integer `sqrt(E[x²] − E[x]²)` in 128-bit arithmetic, normalized.
pub fn stddev(count: u64, sum: i64, sumsq: u128, normal: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    let normal = normal.max(1);
    let avg_of_squares = sumsq / normal as u128 / count as u128;
    let norm_avg = sum
        .checked_div(normal as i64)
        .and_then(|v| v.checked_div(count as i64))
        .unwrap_or(0)
        .unsigned_abs() as u128;
    let diff = avg_of_squares.wrapping_sub(norm_avg * norm_avg);
    diff.isqrt() as u64
}

/// avg's printed value: `sum / normal / count`, signed (0 without data).
pub fn average(count: u64, sum: i64, normal: u64) -> i64 {
    if count == 0 {
        return 0;
    }
    sum.checked_div(normal.max(1) as i64)
        .and_then(|v| v.checked_div(count as i64))
        .unwrap_or(0)
}

/// The value an aggregation holds for a key it has no entry for (joined printa).
pub fn zero_value(func: &AggFunc) -> AggValue {
    match func {
        AggFunc::Avg => AggValue::Avg { count: 0, sum: 0 },
        AggFunc::Stddev => AggValue::Stddev {
            count: 0,
            sum: 0,
            sumsq: 0,
        },
        f if f.is_histogram() => AggValue::Hist(vec![0; f.words() as usize]),
        _ => AggValue::Scalar(0),
    }
}

fn variant(v: &AggValue) -> u8 {
    match v {
        AggValue::Scalar(_) => 0,
        AggValue::Avg { .. } => 1,
        AggValue::Stddev { .. } => 2,
        AggValue::Hist(_) => 3,
    }
}

/// `dt_aggregate_valcmp` for two values of one aggregating function.
pub fn cmp_values(func: &AggFunc, a: &AggValue, b: &AggValue) -> Ordering {
    match (a, b) {
        (AggValue::Scalar(x), AggValue::Scalar(y)) => x.cmp(y),
        (AggValue::Avg { count: c1, sum: s1 }, AggValue::Avg { count: c2, sum: s2 }) => {
            average(*c1, *s1, 1).cmp(&average(*c2, *s2, 1))
        }
        (
            AggValue::Stddev {
                count: c1,
                sum: s1,
                sumsq: q1,
            },
            AggValue::Stddev {
                count: c2,
                sum: s2,
                sumsq: q2,
            },
        ) => stddev(*c1, *s1, *q1, 1).cmp(&stddev(*c2, *s2, *q2, 1)),
        (AggValue::Hist(x), AggValue::Hist(y)) => {
            histogram::weight(func, x).cmp(&histogram::weight(func, y))
        }
        _ => variant(a).cmp(&variant(b)),
    }
}

fn key_variant(v: &Value) -> u8 {
    match v {
        Value::Int { .. } => 0,
        Value::Str(_) => 1,
        Value::Stack(_) => 2,
        Value::Sym(_) => 3,
        Value::Bytes(_) => 4,
    }
}

fn mask(value: i64, size: u8) -> u64 {
    match size {
        1 => value as u8 as u64,
        2 => value as u16 as u64,
        4 => value as u32 as u64,
        _ => value as u64,
    }
}

/// One key compared as DTrace compares records: integers by size then as unsigned,
/// strings and bytes bytewise (stacks and symbols by their text, as only that is kept).
pub fn cmp_key(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (
            Value::Int {
                value: x, size: sx, ..
            },
            Value::Int {
                value: y, size: sy, ..
            },
        ) => sx.cmp(sy).then(mask(*x, *sx).cmp(&mask(*y, *sy))),
        (Value::Str(x), Value::Str(y)) | (Value::Sym(x), Value::Sym(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Value::Stack(x), Value::Stack(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        _ => key_variant(a).cmp(&key_variant(b)),
    }
}

/// `dt_aggregate_keycmp`: key count first, then the keys starting at `keypos`.
pub fn cmp_keys(a: &[Value], b: &[Value], keypos: u32) -> Ordering {
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let n = a.len();
    let start = if keypos as usize >= n {
        0
    } else {
        keypos as usize
    };
    (0..n)
        .map(|i| (i + start) % n)
        .map(|k| cmp_key(&a[k], &b[k]))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The entries of one aggregation in DTrace's print order.
pub fn sorted<'a>(snap: &'a AggSnapshot, sort: &SortOpts) -> Vec<&'a AggEntry> {
    let func = &snap.desc.func;
    let mut v: Vec<&AggEntry> = snap.entries.iter().collect();
    v.sort_by(|a, b| {
        let o = if sort.key {
            cmp_keys(&a.keys, &b.keys, sort.keypos)
        } else {
            cmp_values(func, &a.value, &b.value)
                .then_with(|| cmp_keys(&a.keys, &b.keys, sort.keypos))
        };
        if sort.rev {
            o.reverse()
        } else {
            o
        }
    });
    v
}

/// One key in the default layout.
fn print_key(out: &mut Vec<u8>, key: &Value, ty: Option<&FieldType>, strsize: usize) {
    match key {
        Value::Int { value, size, .. } => {
            let text = match size {
                1 => format!(" {:>3}", *value as u8),
                2 => format!(" {:>5}", *value as u16),
                4 => format!(" {:>8}", *value as i32),
                _ => format!(" {:>16}", value),
            };
            out.extend_from_slice(text.as_bytes());
        }
        Value::Str(s) => {
            let size = match ty {
                Some(FieldType::Str { size }) => (*size as usize).saturating_sub(1),
                _ => strsize,
            };
            trace::bytes(out, &trace::string_buffer(s, size), 50, false)
        }
        Value::Bytes(b) => trace::bytes(out, b, 50, false),
        Value::Stack(frames) => {
            if !(frames.is_empty() && matches!(ty, Some(FieldType::UStack { .. }))) {
                write_stack(out, frames, STACK_INDENT, "%s");
            }
        }
        Value::Sym(s) => out.extend_from_slice(format!("  {s:<50}").as_bytes()),
    }
}

/// One value in the default layout (`dt_print_datum`).
pub fn print_value(out: &mut Vec<u8>, func: &AggFunc, value: &AggValue, normal: u64) {
    match value {
        AggValue::Scalar(v) => {
            out.extend_from_slice(format!(" {:>16}", div_normal(*v, normal)).as_bytes())
        }
        AggValue::Avg { count, sum } => {
            out.extend_from_slice(format!(" {:>16}", average(*count, *sum, normal)).as_bytes())
        }
        AggValue::Stddev { count, sum, sumsq } => out
            .extend_from_slice(format!(" {:>16}", stddev(*count, *sum, *sumsq, normal)).as_bytes()),
        AggValue::Hist(data) => histogram::print(out, func, data, normal),
    }
}

/// One joined row: the keys and, per aggregation, its value (or its zero value).
pub struct Row<'a> {
    pub keys: &'a [Value],
    pub values: Vec<std::borrow::Cow<'a, AggValue>>,
}

/// `dtrace_aggregate_walk_joined`: the union of the keys of `aggs`, each row holding every
/// aggregation's value, sorted like `dt_aggregate_bundlecmp`.
pub fn joined<'a>(aggs: &[&'a AggSnapshot], sort: &SortOpts) -> Vec<Row<'a>> {
    use std::borrow::Cow;
    let n = aggs.len();
    let mut all: Vec<(usize, &'a AggEntry)> = aggs
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.entries.iter().map(move |e| (i, e)))
        .collect();
    all.sort_by(|a, b| cmp_keys(&a.1.keys, &b.1.keys, 0).then(a.0.cmp(&b.0)));
    let mut rows: Vec<Row<'a>> = Vec::new();
    let mut start = 0;
    while start < all.len() {
        let keys = &all[start].1.keys;
        let mut end = start;
        while end < all.len() && cmp_keys(&all[end].1.keys, keys, 0).is_eq() {
            end += 1;
        }
        // An aggregation named twice (printa(@a, @a)) shows the same data in both columns.
        let values = (0..n)
            .map(|i| {
                match all[start..end]
                    .iter()
                    .find(|(ai, _)| std::ptr::eq(aggs[*ai], aggs[i]))
                {
                    Some((_, e)) => Cow::Borrowed(&e.value),
                    None => Cow::Owned(zero_value(&aggs[i].desc.func)),
                }
            })
            .collect();
        rows.push(Row { keys, values });
        start = end;
    }
    let pos = if sort.pos as usize >= n {
        0
    } else {
        sort.pos as usize
    };
    rows.sort_by(|a, b| {
        let mut o = if sort.key {
            cmp_keys(a.keys, b.keys, sort.keypos)
        } else {
            Ordering::Equal
        };
        for i in 0..n {
            if o.is_ne() {
                break;
            }
            let k = (i + pos) % n;
            o = cmp_values(&aggs[k].desc.func, &a.values[k], &b.values[k]);
        }
        if o.is_eq() && !sort.key {
            o = cmp_keys(a.keys, b.keys, sort.keypos);
        }
        if sort.rev {
            o.reverse()
        } else {
            o
        }
    });
    rows
}

/// The default layout of one row: keys, then every value, then a newline.
fn print_row(out: &mut Vec<u8>, aggs: &[&AggSnapshot], row: &Row, strsize: usize) {
    let types = &aggs[0].desc.keys;
    for (i, k) in row.keys.iter().enumerate() {
        print_key(out, k, types.get(i).map(|f| &f.ty), strsize);
    }
    for (snap, v) in aggs.iter().zip(&row.values) {
        print_value(out, &snap.desc.func, v, snap.normal);
    }
    out.push(b'\n');
}

/// The default layout of one aggregation (no leading newline), as the end-of-run dump
/// prints it.
pub fn print_default(out: &mut Vec<u8>, snap: &AggSnapshot, sort: &SortOpts, strsize: usize) {
    for e in sorted(snap, sort) {
        let row = Row {
            keys: &e.keys,
            values: vec![std::borrow::Cow::Borrowed(&e.value)],
        };
        print_row(out, &[snap], &row, strsize);
    }
}

/// Render one `%@` conversion of printa for a value of `func` (`pfprint_average`,
/// `pfprint_stddev`, `pfprint_quantize`..., or the integer printers).
fn render_agg(
    out: &mut Vec<u8>,
    c: &Conv,
    spec: &Spec,
    func: &AggFunc,
    value: &AggValue,
    normal: u64,
) {
    let count = matches!(func, AggFunc::Count);
    let (signed, ofmt) = match c.info.render {
        Render::Dint if count => (false, "u"),
        Render::Dint | Render::Sint => (true, c.info.ofmt),
        Render::Uint => (false, c.info.ofmt),
        _ => (true, "d"),
    };
    let normal = normal.max(1);
    match value {
        AggValue::Hist(data) => histogram::print(out, func, data, normal),
        AggValue::Scalar(v) => format_int(out, spec, ofmt, *v, 8, signed, normal),
        AggValue::Avg { count, sum } => {
            // pfprint_average divides as unsigned.
            let r = ((*sum as u64) / normal).checked_div(*count).unwrap_or(0);
            format_int(out, spec, ofmt, r as i64, 8, signed, 1);
        }
        AggValue::Stddev { count, sum, sumsq } => {
            let r = stddev(*count, *sum, *sumsq, normal);
            format_int(out, spec, ofmt, r as i64, 8, signed, 1);
        }
    }
}

/// `printa([fmt,] @a[, @b...])`. Without a format: a newline, then the default layout
/// (joined on keys when several aggregations are given). With a format: the format once
/// per entry, key conversions consuming the keys in order and `%@` conversions the values
/// (the n-th `%@` takes the n-th aggregation, later ones reuse the last).
pub fn printa(
    out: &mut Vec<u8>,
    fmt: Option<&Format>,
    aggs: &[&AggSnapshot],
    sort: &SortOpts,
    strsize: usize,
) -> Result<(), FormatError> {
    if aggs.is_empty() {
        return Ok(());
    }
    let Some(fmt) = fmt else {
        out.push(b'\n');
        if aggs.len() == 1 {
            print_default(out, aggs[0], sort, strsize);
        } else {
            for row in joined(aggs, sort) {
                print_row(out, aggs, &row, strsize);
            }
        }
        return Ok(());
    };
    let rows: Vec<Row> = if aggs.len() == 1 {
        sorted(aggs[0], sort)
            .into_iter()
            .map(|e| Row {
                keys: &e.keys,
                values: vec![std::borrow::Cow::Borrowed(&e.value)],
            })
            .collect()
    } else {
        joined(aggs, sort)
    };
    for row in &rows {
        let mut cur = 0;
        printf::render(out, fmt.pieces(), row.keys, &mut |c, spec, out| {
            let snap = aggs[cur];
            render_agg(out, c, spec, &snap.desc.func, &row.values[cur], snap.normal);
            if cur < aggs.len() - 1 {
                cur += 1;
            }
            Ok(())
        })?;
    }
    Ok(())
}
