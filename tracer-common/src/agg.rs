//! Aggregations: one per-CPU hash map each, keyed by the tuple bytes, valued by the
//! function's accumulator. The runtime merges the per-CPU values.
//!
//! Accumulator layouts (all u64/i64 words, native endian):
//! - `count`: `[count]`
//! - `sum`: `[sum]`
//! - `avg`: `[count, sum]`
//! - `min`/`max`: `[count, value ^ minmax_bias]` (see [`minmax_bias`]: the word is an unsigned
//!   number that only grows, and 0, a zeroed slot, stands for no value yet)
//! - `stddev`: `[count, sum, sumsq_lo, sumsq_hi]` (sum of squares as u128)
//! - `quantize`/`lquantize`/`llquantize`: one i64 per bucket (see `nbuckets`).

use crate::record::Field;
use serde::{Deserialize, Serialize};

/// The XOR that turns a min/max value into the word the kernel keeps: for `max`, the sign bit
/// flipped (unsigned order = signed order, and 0 = i64::MIN); for `min`, every bit but the
/// sign flipped (the order reversed, and 0 = i64::MAX). Both then only need an atomic unsigned
/// maximum, exact when a firing is preempted by another, and a zeroed slot needs no start.
pub const fn minmax_bias(min: bool) -> i64 {
    if min {
        i64::MAX
    } else {
        i64::MIN
    }
}

/// DTrace's quantize has 2·64−1 buckets; bucket 63 holds 0.
pub const QUANTIZE_NBUCKETS: u32 = 127;
pub const QUANTIZE_ZERO_BUCKET: u32 = 63;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
    Quantize,
    Lquantize {
        low: i64,
        high: i64,
        step: i64,
    },
    Llquantize {
        factor: u16,
        low: u16,
        high: u16,
        nsteps: u16,
    },
}

impl AggFunc {
    pub fn name(&self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Stddev => "stddev",
            AggFunc::Quantize => "quantize",
            AggFunc::Lquantize { .. } => "lquantize",
            AggFunc::Llquantize { .. } => "llquantize",
        }
    }

    /// Number of u64 words in the accumulator.
    pub fn words(&self) -> u32 {
        match self {
            AggFunc::Count | AggFunc::Sum => 1,
            AggFunc::Avg | AggFunc::Min | AggFunc::Max => 2,
            AggFunc::Stddev => 4,
            AggFunc::Quantize => QUANTIZE_NBUCKETS,
            AggFunc::Lquantize { low, high, step } => lquantize_levels(*low, *high, *step) + 2,
            AggFunc::Llquantize {
                factor,
                low,
                high,
                nsteps,
            } => llquantize_nbuckets(*factor, *low, *high, *nsteps),
        }
    }

    pub fn value_size(&self) -> u32 {
        self.words() * 8
    }

    pub fn is_histogram(&self) -> bool {
        matches!(
            self,
            AggFunc::Quantize | AggFunc::Lquantize { .. } | AggFunc::Llquantize { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggDesc {
    /// The name without `@` (empty for `@`).
    pub name: String,
    pub func: AggFunc,
    /// Name of the per-CPU hash map.
    pub map: String,
    /// Key tuple fields, offsets from the start of the key.
    pub keys: Vec<Field>,
    /// Key size in bytes (at least 8; a keyless aggregation uses one zero u64).
    pub key_size: u32,
    pub max_entries: u32,
}

/// lquantize levels between low and high (DTrace `DTRACE_LQUANTIZE_LEVELS`).
pub fn lquantize_levels(low: i64, high: i64, step: i64) -> u32 {
    ((high - low) / step) as u32
}

/// Bucket of `v` in quantize: 0..=62 negative (62 = -1), 63 zero, 64.. positive powers of two.
pub fn quantize_bucket(v: i64) -> u32 {
    if v == 0 {
        QUANTIZE_ZERO_BUCKET
    } else if v > 0 {
        QUANTIZE_ZERO_BUCKET + 64 - (v as u64).leading_zeros()
    } else {
        let m = v.unsigned_abs();
        QUANTIZE_ZERO_BUCKET - (64 - m.leading_zeros())
    }
}

/// The smallest value that falls in quantize bucket `b` (the row label DTrace prints).
pub fn quantize_bucket_value(b: u32) -> i64 {
    if b == QUANTIZE_ZERO_BUCKET {
        0
    } else if b > QUANTIZE_ZERO_BUCKET {
        1i64.wrapping_shl(b - QUANTIZE_ZERO_BUCKET - 1)
    } else {
        let e = QUANTIZE_ZERO_BUCKET - b - 1;
        if e == 63 {
            i64::MIN
        } else {
            -(1i64 << e)
        }
    }
}

/// Bucket of `v` in lquantize: 0 is `< low`, levels+1 is `>= high`.
pub fn lquantize_bucket(v: i64, low: i64, high: i64, step: i64) -> u32 {
    if v < low {
        0
    } else if v >= high {
        lquantize_levels(low, high, step) + 1
    } else {
        ((v - low) / step) as u32 + 1
    }
}

/// illumos llquantize bucket count: one underflow bucket, `nsteps` per order of magnitude
/// (fewer at the bottom when `factor^low < nsteps`), one overflow bucket.
pub fn llquantize_nbuckets(factor: u16, low: u16, high: u16, nsteps: u16) -> u32 {
    llquantize_bounds(factor, low, high, nsteps).len() as u32 + 1
}

/// The lower bound of every llquantize bucket after the underflow bucket, in order; the last
/// entry is the overflow bound. Mirrors illumos `dtrace_aggregate_llquantize_bucket`, which
/// requires `factor <= nsteps` and `nsteps % factor == 0` (the compiler checks both).
pub fn llquantize_bounds(factor: u16, low: u16, high: u16, nsteps: u16) -> Vec<i64> {
    let (factor, nsteps) = (factor as i64, nsteps as i64);
    let mut this = 1i64;
    for _ in 0..low {
        this = this.saturating_mul(factor);
    }
    let mut last = this;
    this = this.saturating_mul(factor);
    let mut bounds = Vec::new();
    for _order in low..=high {
        let nbuckets = this.min(nsteps);
        let width = this / nbuckets;
        for i in 0..(nbuckets - nbuckets / factor) {
            bounds.push(last + i * width);
        }
        last = this;
        match this.checked_mul(factor) {
            Some(next) => this = next,
            None => break,
        }
    }
    bounds.push(last);
    bounds
}

/// Bucket of `v` in llquantize, consistent with [`llquantize_bounds`]: 0 is underflow.
pub fn llquantize_bucket(v: i64, bounds: &[i64]) -> u32 {
    if v < bounds[0] {
        return 0;
    }
    match bounds.binary_search(&v) {
        Ok(i) => i as u32 + 1,
        Err(i) => i as u32,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn min_and_max_merge_the_biased_words_of_the_cpus_that_saw_a_value() {
        use super::{minmax_bias, AggFunc, AggValue};
        let slot = |n: i64, v: i64, min: bool| -> Vec<u8> {
            [n, v ^ minmax_bias(min)]
                .iter()
                .flat_map(|w| w.to_ne_bytes())
                .collect()
        };
        let merge =
            |func: AggFunc, cpus: &[Vec<u8>]| AggValue::merge(&func, cpus.iter().map(|c| &c[..]));
        let zero = vec![0u8; 16];
        let maxes = [slot(2, -7, false), zero.clone(), slot(1, -9, false)];
        assert_eq!(merge(AggFunc::Max, &maxes), AggValue::Scalar(-7));
        let mins = [zero.clone(), slot(3, i64::MIN, true), slot(1, 5, true)];
        assert_eq!(merge(AggFunc::Min, &mins), AggValue::Scalar(i64::MIN));
        let extremes = [slot(1, i64::MIN, false), slot(1, i64::MAX, false)];
        assert_eq!(merge(AggFunc::Max, &extremes), AggValue::Scalar(i64::MAX));
        // A zeroed slot is the identity: max's word 0 is i64::MIN, min's is i64::MAX.
        let zero_word = |min: bool| std::hint::black_box(0i64) ^ minmax_bias(min);
        assert_eq!(zero_word(false), i64::MIN);
        assert_eq!(zero_word(true), i64::MAX);
        // Cleared everywhere: 0, as DTrace prints.
        assert_eq!(
            merge(AggFunc::Min, &[zero.clone(), zero]),
            AggValue::Scalar(0)
        );
    }

    use super::*;

    #[test]
    fn quantize_buckets_round_trip() {
        for v in [-1000i64, -2, -1, 0, 1, 2, 3, 64, 100, 1 << 40, i64::MAX] {
            let b = quantize_bucket(v);
            assert!(quantize_bucket_value(b) <= v.max(quantize_bucket_value(b)));
            assert_eq!(quantize_bucket(quantize_bucket_value(b)), b, "v={v}");
        }
        assert_eq!(quantize_bucket(0), 63);
        assert_eq!(quantize_bucket(1), 64);
        assert_eq!(quantize_bucket(-1), 62);
        assert_eq!(quantize_bucket_value(64 + 6), 64);
    }

    #[test]
    fn llquantize_bounds_match_illumos() {
        // llquantize(x, 10, 0, 2, 10): 1..9, 10..90, 100..900, overflow at 1000.
        let b = llquantize_bounds(10, 0, 2, 10);
        assert_eq!(&b[..9], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(&b[9..18], &[10, 20, 30, 40, 50, 60, 70, 80, 90]);
        assert_eq!(*b.last().unwrap(), 1000);
        assert_eq!(b.len(), 28);
        assert_eq!(llquantize_bucket(320, &b), 21);
        assert_eq!(llquantize_bucket(0, &b), 0);
        assert_eq!(llquantize_bucket(5000, &b), 28);
        // factor 2, nsteps 4: 4..7 has two buckets of width 2, 8..15 two of width 4.
        let b = llquantize_bounds(2, 2, 3, 4);
        assert_eq!(b, vec![4, 6, 8, 12, 16]);
    }
}

/// An aggregation's merged value, as printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AggValue {
    /// count, sum, min, max: the value itself.
    Scalar(i64),
    /// avg: sum / count (integer division, as DTrace).
    Avg { count: u64, sum: i64 },
    /// stddev over the values seen.
    Stddev { count: u64, sum: i64, sumsq: u128 },
    /// Buckets of quantize/lquantize/llquantize, all of them.
    Hist(Vec<i64>),
}

impl AggValue {
    /// Merge the per-CPU accumulators of one key (each `func.value_size()` bytes).
    pub fn merge<'a>(func: &AggFunc, per_cpu: impl IntoIterator<Item = &'a [u8]>) -> AggValue {
        let words = |b: &'a [u8]| -> Vec<i64> {
            b.chunks_exact(8)
                .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
                .collect()
        };
        if let AggFunc::Min | AggFunc::Max = func {
            let min = matches!(func, AggFunc::Min);
            let best = per_cpu
                .into_iter()
                .map(words)
                .filter(|w| w.len() >= 2 && w[0] != 0)
                .map(|w| w[1] ^ minmax_bias(min))
                .reduce(|a, b| if min { a.min(b) } else { a.max(b) });
            // No value anywhere (cleared): 0, as DTrace prints.
            return AggValue::Scalar(best.unwrap_or(0));
        }
        let mut acc: Option<Vec<i64>> = None;
        let mut sumsq: u128 = 0;
        for bytes in per_cpu {
            let w = words(bytes);
            if w.len() < func.words() as usize {
                continue;
            }
            if matches!(func, AggFunc::Stddev) {
                sumsq = sumsq.wrapping_add((w[2] as u64 as u128) | ((w[3] as u64 as u128) << 64));
            }
            acc = Some(match acc {
                None => w,
                Some(a) => a.iter().zip(&w).map(|(x, y)| x.wrapping_add(*y)).collect(),
            });
        }
        let a = acc.unwrap_or_else(|| vec![0; func.words() as usize]);
        match func {
            AggFunc::Count | AggFunc::Sum => AggValue::Scalar(a[0]),
            AggFunc::Min | AggFunc::Max => unreachable!("merged above"),
            AggFunc::Avg => AggValue::Avg {
                count: a[0] as u64,
                sum: a[1],
            },
            AggFunc::Stddev => AggValue::Stddev {
                count: a[0] as u64,
                sum: a[1],
                sumsq,
            },
            _ => AggValue::Hist(a),
        }
    }

    /// The single number DTrace prints and sorts by (histograms: the sum of their counts).
    pub fn scalar(&self) -> i64 {
        match self {
            AggValue::Scalar(v) => *v,
            AggValue::Avg { count, sum } => {
                if *count == 0 {
                    0
                } else {
                    sum / *count as i64
                }
            }
            AggValue::Stddev { count, sum, sumsq } => stddev(*count, *sum, *sumsq) as i64,
            AggValue::Hist(b) => b.iter().sum(),
        }
    }
}

/// DTrace's integer standard deviation: `sqrt(E[x²] − E[x]²)`.
pub fn stddev(count: u64, sum: i64, sumsq: u128) -> u64 {
    if count == 0 {
        return 0;
    }
    let n = count as i128;
    let mean = sum as i128 / n;
    let var = (sumsq as i128 / n) - mean * mean;
    if var <= 0 {
        0
    } else {
        (var as f64).sqrt() as u64
    }
}

/// One key of an aggregation with its merged value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggEntry {
    pub keys: Vec<crate::value::Value>,
    pub value: AggValue,
}

/// A point-in-time copy of one aggregation, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSnapshot {
    pub desc: AggDesc,
    pub entries: Vec<AggEntry>,
    /// `normalize()` factor (1 when not normalized).
    pub normal: u64,
}
