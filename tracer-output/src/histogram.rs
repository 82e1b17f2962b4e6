//! quantize / lquantize / llquantize distributions, as libdtrace's `dt_print_quantize`,
//! `dt_print_lquantize`, illumos `dt_print_llquantize` and `dt_print_quantline` print them:
//! a leading newline, the `value / Distribution / count` header, then one row per bucket
//! from one empty bucket before the first non-empty one to one after the last. Bars are
//! 40 columns of `@`, `(uint)(40 * |v| / total + 0.5)` long; all-negative data grows the
//! bar leftwards, mixed signs use two half-width bars around a centre `|`.
//!
//! Bucket labels come from tracer-common: quantize bucket `b` is
//! `quantize_bucket_value(b)`; lquantize bucket 0 is `< low`, bucket `i` is
//! `low + (i-1)*step`, the last `>= low + levels*step`; llquantize bucket 0 is
//! `< bounds[0]`, bucket `i` is `bounds[i-1]`, the last `>= bounds.last()`.

use std::cmp::Ordering;
use tracer_common::agg::{
    llquantize_bounds, lquantize_levels, quantize_bucket_value, QUANTIZE_ZERO_BUCKET,
};
use tracer_common::AggFunc;

const BARS: usize = 40;
const HEADER: &str = "\n           value  ------------- Distribution ------------- count    \n";

/// `(long long)val / normal` with DTrace's unsigned `normal` (an unsigned division).
pub fn div_normal(val: i64, normal: u64) -> i64 {
    if normal <= 1 {
        val
    } else {
        ((val as u64) / normal) as i64
    }
}

/// Which buckets decide the bar lengths.
struct Scale {
    total: f64,
    positives: bool,
    negatives: bool,
}

impl Scale {
    fn over(data: &[i64]) -> Scale {
        Scale {
            total: data.iter().map(|&v| (v as f64).abs()).sum(),
            positives: data.iter().any(|&v| v > 0),
            negatives: data.iter().any(|&v| v < 0),
        }
    }

    fn depth(&self, val: i64, len: usize) -> usize {
        if self.total == 0.0 {
            return 0;
        }
        let f = ((val as f64).abs() * len as f64) / self.total;
        ((f + 0.5) as usize).min(len)
    }
}

/// `dt_print_quantline`: the bar and count of one row (after its `"%16s "` label).
fn quantline(out: &mut Vec<u8>, val: i64, normal: u64, s: &Scale) {
    let n = div_normal(val, normal);
    let at = |d: usize| "@".repeat(d);
    let sp = |d: usize| " ".repeat(d);
    let line = if !s.negatives {
        let d = if s.positives { s.depth(val, BARS) } else { 0 };
        format!("|{}{} {:<9}\n", at(d), sp(BARS - d), n)
    } else if !s.positives {
        let d = s.depth(val, BARS);
        format!("{}{}| {:<9}\n", sp(BARS - d), at(d), n)
    } else {
        let half = BARS / 2;
        let d = s.depth(val, half);
        if val <= 0 {
            format!("{}{}|{} {:<9}\n", sp(half - d), at(d), sp(half), n)
        } else {
            format!("{}|{}{} {:<9}\n", sp(half), at(d), sp(half - d), n)
        }
    };
    out.extend_from_slice(line.as_bytes());
}

fn row(out: &mut Vec<u8>, label: &str, val: i64, normal: u64, s: &Scale) {
    out.extend_from_slice(format!("{label:>16} ").as_bytes());
    quantline(out, val, normal, s);
}

/// The buckets DTrace shows: one empty bucket before the first non-zero one and one after
/// the last (within `data`), or `empty` when every bucket is zero.
fn visible(data: &[i64], empty: (usize, usize)) -> (usize, usize) {
    let Some(first) = data.iter().position(|v| *v != 0) else {
        return empty;
    };
    let last = data.iter().rposition(|v| *v != 0).unwrap_or(first);
    (first.saturating_sub(1), (last + 1).min(data.len() - 1))
}

/// `dt_print_quantize`. `data` holds all 127 buckets.
pub fn print_quantize(out: &mut Vec<u8>, data: &[i64], normal: u64) {
    let nb = data.len();
    if nb == 0 {
        return;
    }
    let zero = QUANTIZE_ZERO_BUCKET as usize;
    // No data (possible with negative increments): show the buckets around 0.
    let empty = (zero.saturating_sub(1).min(nb - 1), (zero + 1).min(nb - 1));
    let (first, last) = visible(&data[..nb], empty);
    let s = Scale::over(&data[first..=last]);
    out.extend_from_slice(HEADER.as_bytes());
    for (i, &v) in data.iter().enumerate().take(last + 1).skip(first) {
        row(
            out,
            &quantize_bucket_value(i as u32).to_string(),
            v,
            normal,
            &s,
        );
    }
}

/// `dt_print_lquantize`. `data` holds `levels + 2` buckets (underflow first).
pub fn print_lquantize(
    out: &mut Vec<u8>,
    data: &[i64],
    low: i64,
    high: i64,
    step: i64,
    normal: u64,
) {
    if data.len() < 2 {
        return;
    }
    let levels = (lquantize_levels(low, high, step) as usize).min(data.len() - 2);
    let (first, last) = visible(&data[..levels + 2], (0, 2.min(levels + 1)));
    let s = Scale::over(&data[first..=last]);
    out.extend_from_slice(HEADER.as_bytes());
    for (i, &v) in data.iter().enumerate().take(last + 1).skip(first) {
        let label = if i == 0 {
            format!("< {low}")
        } else if i == levels + 1 {
            format!(">= {}", low + levels as i64 * step)
        } else {
            (low + (i as i64 - 1) * step).to_string()
        };
        row(out, &label, v, normal, &s);
    }
}

/// illumos `dt_print_llquantize`. `data` holds `bounds.len() + 1` buckets.
pub fn print_llquantize(out: &mut Vec<u8>, data: &[i64], bounds: &[i64], normal: u64) {
    let levels = data.len().min(bounds.len() + 1);
    if levels < 2 {
        return;
    }
    let (first, last) = visible(&data[..levels], (0, 1));
    let s = Scale::over(&data[first..=last]);
    out.extend_from_slice(HEADER.as_bytes());
    for (i, &v) in data.iter().enumerate().take(last + 1).skip(first) {
        let label = if i == 0 {
            format!("< {}", bounds[0])
        } else if i == levels - 1 {
            format!(">= {}", bounds[levels - 2])
        } else {
            bounds[i - 1].to_string()
        };
        row(out, &label, v, normal, &s);
    }
}

/// Print any histogram aggregation's buckets; does nothing for scalar functions.
pub fn print(out: &mut Vec<u8>, func: &AggFunc, data: &[i64], normal: u64) {
    match *func {
        AggFunc::Quantize => print_quantize(out, data, normal),
        AggFunc::Lquantize { low, high, step } => {
            print_lquantize(out, data, low, high, step, normal)
        }
        AggFunc::Llquantize {
            factor,
            low,
            high,
            nsteps,
        } => print_llquantize(
            out,
            data,
            &llquantize_bounds(factor, low, high, nsteps),
            normal,
        ),
        _ => {}
    }
}

/// One bucket's range (inclusive; `None` = unbounded) and count, for JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bucket {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    pub count: i64,
}

/// The non-empty buckets of a histogram with their value ranges.
pub fn buckets(func: &AggFunc, data: &[i64], normal: u64) -> Vec<Bucket> {
    let range = |i: usize| -> (Option<i64>, Option<i64>) {
        match *func {
            AggFunc::Quantize => {
                let z = QUANTIZE_ZERO_BUCKET as usize;
                let v = quantize_bucket_value(i as u32);
                if i < z {
                    let min = if i == 0 {
                        i64::MIN
                    } else {
                        quantize_bucket_value(i as u32 - 1) + 1
                    };
                    (Some(min), Some(v))
                } else if i == z {
                    (Some(0), Some(0))
                } else if i + 1 >= data.len() {
                    (Some(v), Some(i64::MAX))
                } else {
                    (Some(v), Some(quantize_bucket_value(i as u32 + 1) - 1))
                }
            }
            AggFunc::Lquantize { low, high, step } => {
                let levels = lquantize_levels(low, high, step) as usize;
                if i == 0 {
                    (None, Some(low - 1))
                } else if i > levels {
                    (Some(low + levels as i64 * step), None)
                } else {
                    let lo = low + (i as i64 - 1) * step;
                    (Some(lo), Some(lo + step - 1))
                }
            }
            AggFunc::Llquantize {
                factor,
                low,
                high,
                nsteps,
            } => {
                let b = llquantize_bounds(factor, low, high, nsteps);
                if i == 0 {
                    (None, Some(b[0] - 1))
                } else if i >= b.len() {
                    (b.last().copied(), None)
                } else {
                    (Some(b[i - 1]), Some(b[i] - 1))
                }
            }
            _ => (None, None),
        }
    };
    data.iter()
        .enumerate()
        .filter(|(_, &c)| c != 0)
        .map(|(i, &c)| {
            let (min, max) = range(i);
            Bucket {
                min,
                max,
                count: div_normal(c, normal),
            }
        })
        .collect()
}

/// DTrace's sort weight of a histogram: the sum of bucket value × count (exact while it
/// fits in i128, as DTrace's long double sum is nearly exact), then the count at zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight {
    exact: Option<i128>,
    approx: f64,
    zero: i64,
}

impl Weight {
    fn new(terms: impl Iterator<Item = (i64, i64)>, zero: i64) -> Weight {
        let (mut exact, mut approx) = (Some(0i128), 0f64);
        for (value, count) in terms {
            exact = exact.and_then(|e| e.checked_add(value as i128 * count as i128));
            approx += value as f64 * count as f64;
        }
        Weight {
            exact,
            approx,
            zero,
        }
    }

    /// Compare two weights like `dt_aggregate_{,l,ll}quantizedcmp`.
    pub fn cmp(&self, other: &Weight) -> Ordering {
        let by_sum = match (self.exact, other.exact) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self
                .approx
                .partial_cmp(&other.approx)
                .unwrap_or(Ordering::Equal),
        };
        by_sum.then(self.zero.cmp(&other.zero))
    }
}

/// The sort weight of a histogram's buckets.
pub fn weight(func: &AggFunc, data: &[i64]) -> Weight {
    let at = |i: usize| data.get(i).copied().unwrap_or(0);
    match *func {
        AggFunc::Lquantize { low, high, step } => {
            let levels = lquantize_levels(low, high, step) as usize;
            let value = |i: usize| {
                if i == 0 {
                    low - 1
                } else if i > levels {
                    low + levels as i64 * step + 1
                } else {
                    low + (i as i64 - 1) * step
                }
            };
            let zero = (0..levels + 2)
                .find(|&i| value(i) == 0)
                .map(at)
                .unwrap_or(0);
            Weight::new((0..levels + 2).map(|i| (value(i), at(i))), zero)
        }
        AggFunc::Llquantize {
            factor,
            low,
            high,
            nsteps,
        } => {
            let b = llquantize_bounds(factor, low, high, nsteps);
            let value = |i: usize| {
                if i == 0 {
                    b[0] - 1
                } else {
                    b[(i - 1).min(b.len() - 1)]
                }
            };
            Weight::new((0..b.len() + 1).map(|i| (value(i), at(i))), at(0))
        }
        _ => Weight::new(
            data.iter()
                .enumerate()
                .map(|(i, &c)| (quantize_bucket_value(i as u32), c)),
            at(QUANTIZE_ZERO_BUCKET as usize),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::agg::{
        llquantize_bucket, lquantize_bucket, quantize_bucket, QUANTIZE_NBUCKETS,
    };

    fn q(values: &[(i64, i64)]) -> Vec<i64> {
        let mut d = vec![0i64; QUANTIZE_NBUCKETS as usize];
        for &(v, incr) in values {
            let b = quantize_bucket(v) as usize;
            d[b] = d[b].wrapping_add(incr);
        }
        d
    }
    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut o = Vec::new();
        f(&mut o);
        String::from_utf8(o).unwrap()
    }
    const H: &str = "\n           value  ------------- Distribution ------------- count    \n";

    #[test]
    fn quantize_single() {
        let got = text(|o| print_quantize(o, &q(&[(0, 1)]), 1));
        let want = format!(
            "{H}              -1 |{0} 0        \n               0 |{1} 1        \n               1 |{0} 0        \n",
            " ".repeat(40),
            "@".repeat(40)
        );
        assert_eq!(got, want);
        let got = text(|o| print_quantize(o, &q(&[(100, 1)]), 1));
        assert!(got.contains("              32 |"));
        assert!(
            got.contains("              64 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1        \n")
        );
        assert!(
            got.ends_with("             128 |                                         0        \n")
        );
    }

    #[test]
    fn quantize_negative_and_mixed() {
        // aggs/tst.negquant (illumos .out): k-ingleside, l-taraval, j-church (no data).
        let got = text(|o| print_quantize(o, &q(&[(1, -123)]), 1));
        assert_eq!(
            got,
            format!(
                "{H}               0 {0}| 0        \n               1 {1}| -123     \n               2 {0}| 0        \n",
                " ".repeat(40),
                "@".repeat(40)
            )
        );
        let got = text(|o| print_quantize(o, &q(&[(0, -123), (-1, -123), (1, 123), (1, 123)]), 1));
        assert_eq!(
            got,
            format!(
                "{H}              -2                     |                     0        \n\
                 \x20             -1                @@@@@|                     -123     \n\
                 \x20              0                @@@@@|                     -123     \n\
                 \x20              1                     |@@@@@@@@@@           246      \n\
                 \x20              2                     |                     0        \n"
            )
        );
        let got = text(|o| print_quantize(o, &q(&[(1, 100), (1, -99), (1, -1)]), 1));
        let empty = format!("|{} 0        \n", " ".repeat(40));
        assert_eq!(
            got,
            format!("{H}              -1 {empty}               0 {empty}               1 {empty}")
        );
        // m-oceanview: 1 bucket overflowed to i64::MIN.
        let m = q(&[(1, i64::MAX), (1, 1), (2, i64::MAX), (8, 400000)]);
        let got = text(|o| print_quantize(o, &m, 1));
        assert!(got.contains(
            "               1           @@@@@@@@@@|                     -9223372036854775808\n"
        ));
        assert!(got.contains(
            "               2                     |@@@@@@@@@@           9223372036854775807\n"
        ));
        assert!(
            got.contains("               8                     |                     400000   \n")
        );
    }

    #[test]
    fn lquantize_rows() {
        // aggs/tst.lquantize: lquantize(0, -100, 1100, 100).
        let mut d = vec![0i64; 14];
        d[lquantize_bucket(0, -100, 1100, 100) as usize] += 1;
        let got = text(|o| print_lquantize(o, &d, -100, 1100, 100, 1));
        assert!(got.starts_with(&format!(
            "{H}            -100 |{} 0        \n",
            " ".repeat(40)
        )));
        assert!(got.ends_with(&format!("             100 |{} 0        \n", " ".repeat(40))));
        // printa/tst.basics @c: lquantize(1, 1, 10).
        let mut d = vec![0i64; 11];
        d[lquantize_bucket(1, 1, 10, 1) as usize] += 1;
        let got = text(|o| print_lquantize(o, &d, 1, 10, 1, 1));
        assert_eq!(
            got,
            format!(
                "{H}             < 1 |{0} 0        \n               1 |{1} 1        \n               2 |{0} 0        \n",
                " ".repeat(40),
                "@".repeat(40)
            )
        );
        // Overflow row and no data.
        let mut d = vec![0i64; 11];
        d[10] = 3;
        assert!(text(|o| print_lquantize(o, &d, 1, 10, 1, 1)).contains("           >= 10 |@@@@"));
        let got = text(|o| print_lquantize(o, &[0; 11], 1, 10, 1, 1));
        assert_eq!(got.lines().count(), 5);
        assert!(got.contains("             < 1 |"));
    }

    #[test]
    fn llquantize_illumos_basic() {
        // illumos llquantize/tst.basic.d.out: llquantize(i, 10, 0, 10, 10), i = 1..=101.
        let bounds = llquantize_bounds(10, 0, 10, 10);
        let mut d = vec![0i64; bounds.len() + 1];
        for i in 1..=101 {
            d[llquantize_bucket(i, &bounds) as usize] += 1;
        }
        let mut want = format!("{H}             < 1 |{} 0        \n", " ".repeat(40));
        for v in 1..=9 {
            want += &format!("{v:>16} |{} 1        \n", " ".repeat(40));
        }
        for v in (10..=90).step_by(10) {
            want += &format!("{v:>16} |@@@@{} 10       \n", " ".repeat(36));
        }
        want += &format!("             100 |@{} 2        \n", " ".repeat(39));
        want += &format!("             200 |{} 0        \n", " ".repeat(40));
        assert_eq!(text(|o| print_llquantize(o, &d, &bounds, 1)), want);
        // Overflow row.
        let b = llquantize_bounds(10, 0, 1, 10);
        let mut d = vec![0i64; b.len() + 1];
        d[llquantize_bucket(5000, &b) as usize] = 1;
        assert!(text(|o| print_llquantize(o, &d, &b, 1))
            .ends_with(&format!("          >= 100 |{} 1        \n", "@".repeat(40))));
    }

    #[test]
    fn normalized_counts_and_json_buckets() {
        let got = text(|o| print_quantize(o, &q(&[(4, 10)]), 5));
        assert!(
            got.contains("               4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 2        \n")
        );
        let b = buckets(&AggFunc::Quantize, &q(&[(0, 1), (5, 2), (-3, 1)]), 1);
        assert_eq!(
            b,
            vec![
                Bucket {
                    min: Some(-3),
                    max: Some(-2),
                    count: 1
                },
                Bucket {
                    min: Some(0),
                    max: Some(0),
                    count: 1
                },
                Bucket {
                    min: Some(4),
                    max: Some(7),
                    count: 2
                },
            ]
        );
        let f = AggFunc::Lquantize {
            low: 0,
            high: 10,
            step: 5,
        };
        let b = buckets(&f, &[1, 2, 0, 3], 1);
        assert_eq!(
            b[0],
            Bucket {
                min: None,
                max: Some(-1),
                count: 1
            }
        );
        assert_eq!(
            b[1],
            Bucket {
                min: Some(0),
                max: Some(4),
                count: 2
            }
        );
        assert_eq!(
            b[2],
            Bucket {
                min: Some(10),
                max: None,
                count: 3
            }
        );
    }

    #[test]
    fn weights_sort_like_dtrace() {
        // s-castro sorts before f-market although they differ only in the low bits.
        let chain = |start: i64| {
            let (mut i, mut v, mut d) = (1i64, start, Vec::new());
            for _ in 0..4 {
                d.push((i, v));
                i <<= 1;
                v >>= 1;
            }
            q(&d)
        };
        let s = weight(&AggFunc::Quantize, &chain(i64::MAX - 3));
        let f = weight(&AggFunc::Quantize, &chain(i64::MAX));
        assert_eq!(s.cmp(&f), Ordering::Less);
        let a = weight(&AggFunc::Quantize, &q(&[(1, -123)]));
        let b = weight(&AggFunc::Quantize, &q(&[(1, 0)]));
        assert_eq!(a.cmp(&b), Ordering::Less);
    }
}
