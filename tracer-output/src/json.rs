//! `--format json`: one JSON object per line (NDJSON), serialized with serde_json in a
//! fixed field order (`type` first).
//!
//! Every object has a `"type"`. Objects produced by a clause also carry `"probe"`
//! (`provider:module:function:name`) and `"cpu"`.
//!
//! ```text
//! {"type":"trace","probe":"dtrace:::BEGIN","cpu":0,"value":42}
//! {"type":"printf","probe":"syscall:vmlinux:read:entry","cpu":3,"msg":"read 12 bytes\n"}
//! {"type":"stack","probe":"...","cpu":0,"user":false,"frames":["vmlinux`ksys_read+0x10"]}
//! {"type":"printa","probe":"...","cpu":0,"format":"%s %@d\n","msg":"...","aggregations":[...]}
//! {"type":"aggregation","name":"@a","func":"count","entries":[{"keys":["bash"],"value":12}]}
//! ```
//!
//! * Values (`"value"` of trace, `"keys"` items): integers are numbers (unsigned ones as
//!   unsigned of their size), strings and symbols are strings, stacks are arrays of frame
//!   strings, raw bytes are arrays of numbers.
//! * `printa`: `"format"` is the format string or `null`; `"msg"` is exactly the text the
//!   text mode prints; `"aggregations"` holds one aggregation object per aggregation.
//! * `aggregation`: entries in DTrace's print order. `"value"` is a number for
//!   count/sum/min/max/avg/stddev (normalized, as printed); for quantize/lquantize/
//!   llquantize it is `{"buckets":[{"min":M,"max":N,"count":C},...]}` listing the
//!   non-empty buckets with inclusive bounds (`"min"` absent on an underflow bucket,
//!   `"max"` absent on an overflow bucket). The end-of-run dump emits one such object per
//!   aggregation not printed by printa.

use super::aggregate::{average, sorted, stddev, SortOpts};
use super::histogram::{self, div_normal, Bucket};
use crate::output::Output;
use crate::{printf, Printer};
use serde::Serialize;
use std::io::Write;
use tracer_common::{AggFunc, AggSnapshot, AggValue, Options, ProbeDesc, Value};
use tracer_format::{Format, FormatError};

/// A traced value or key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JValue {
    Int(i64),
    UInt(u64),
    Str(String),
    Frames(Vec<String>),
    Bytes(Vec<u8>),
}

/// An aggregation's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JAggValue {
    Int(i64),
    UInt(u64),
    Hist { buckets: Vec<Bucket> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JEntry {
    pub keys: Vec<JValue>,
    pub value: JAggValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JAggregation {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub func: &'static str,
    pub entries: Vec<JEntry>,
}

/// A clause's output object: `type`, `probe`, `cpu`, then the body's fields.
#[derive(Debug, Serialize)]
pub struct Record<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(flatten)]
    pub body: &'a T,
}

#[derive(Debug, Serialize)]
pub struct TraceBody {
    pub value: JValue,
}

#[derive(Debug, Serialize)]
pub struct PrintfBody {
    pub msg: String,
}

#[derive(Debug, Serialize)]
pub struct StackBody<'a> {
    pub user: bool,
    pub frames: &'a [String],
}

#[derive(Debug, Serialize)]
pub struct PrintaBody<'a> {
    pub format: Option<&'a str>,
    pub msg: String,
    pub aggregations: Vec<JAggregation>,
}

/// A traced value as JSON.
pub fn value(v: &Value) -> JValue {
    match v {
        Value::Int {
            value,
            signed: false,
            size,
        } => JValue::UInt(match size {
            1 => *value as u8 as u64,
            2 => *value as u16 as u64,
            4 => *value as u32 as u64,
            _ => *value as u64,
        }),
        Value::Int { value, size, .. } => JValue::Int(match size {
            1 => *value as i8 as i64,
            2 => *value as i16 as i64,
            4 => *value as i32 as i64,
            _ => *value,
        }),
        Value::Str(s) | Value::Sym(s) => JValue::Str(s.clone()),
        Value::Stack(frames) => JValue::Frames(frames.clone()),
        Value::Bytes(b) => JValue::Bytes(b.clone()),
    }
}

/// An aggregation value as JSON (normalized like the text output).
pub fn agg_value(func: &AggFunc, v: &AggValue, normal: u64) -> JAggValue {
    match v {
        AggValue::Scalar(x) => JAggValue::Int(div_normal(*x, normal)),
        AggValue::Avg { count, sum } => JAggValue::Int(average(*count, *sum, normal)),
        AggValue::Stddev { count, sum, sumsq } => {
            JAggValue::UInt(stddev(*count, *sum, *sumsq, normal))
        }
        AggValue::Hist(data) => JAggValue::Hist {
            buckets: histogram::buckets(func, data, normal),
        },
    }
}

/// The name DTrace shows for an aggregation (`@` for the anonymous one).
pub fn agg_name(snap: &AggSnapshot) -> String {
    format!("@{}", snap.desc.name)
}

/// One aggregation as an `aggregation` object.
pub fn aggregation(snap: &AggSnapshot, sort: &SortOpts) -> JAggregation {
    JAggregation {
        kind: "aggregation",
        name: agg_name(snap),
        func: snap.desc.func.name(),
        entries: sorted(snap, sort)
            .into_iter()
            .map(|e| JEntry {
                keys: e.keys.iter().map(value).collect(),
                value: agg_value(&snap.desc.func, &e.value, snap.normal),
            })
            .collect(),
    }
}

/// Serialize one object as a line.
pub fn line<T: Serialize>(obj: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec(obj).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Serialize a clause record (`probe`/`cpu` omitted when `clause` is `None`).
pub fn record<T: Serialize>(
    kind: &'static str,
    clause: Option<(&ProbeDesc, u32)>,
    body: &T,
) -> Vec<u8> {
    line(&Record {
        kind,
        probe: clause.map(|(p, _)| p.full_name()),
        cpu: clause.map(|(_, c)| c),
        body,
    })
}

/// Prints one JSON object per line, in the schema above.
pub struct JsonPrinter {
    out: Output,
    /// The probe and CPU of the clause being printed.
    clause: Option<(ProbeDesc, u32)>,
}

impl JsonPrinter {
    pub fn new(out: Box<dyn Write>, opts: &Options) -> JsonPrinter {
        JsonPrinter {
            out: Output::new(out, opts),
            clause: None,
        }
    }

    /// Write one clause object of type `kind`.
    fn record<T: Serialize>(&mut self, kind: &'static str, body: &T) {
        let clause = self.clause.as_ref().map(|(p, c)| (p, *c));
        let r = record(kind, clause, body);
        self.out.emit(&r);
    }
}

impl Printer for JsonPrinter {
    fn begin_clause(&mut self, probe: &ProbeDesc, cpu: u32) {
        self.clause = Some((probe.clone(), cpu));
    }

    fn trace(&mut self, v: &Value) {
        self.record("trace", &TraceBody { value: value(v) });
    }

    /// A `printf` object whose `msg` is the text the text printer prints.
    fn printf(&mut self, fmt: &Format, args: &[Value]) -> Result<(), FormatError> {
        let bytes = printf::format_bytes(fmt, args)?;
        let msg = String::from_utf8_lossy(&bytes).into_owned();
        self.record("printf", &PrintfBody { msg });
        Ok(())
    }

    fn printa(&mut self, fmt: Option<&Format>, aggs: &[&AggSnapshot]) -> Result<(), FormatError> {
        let o = self.out.printa(fmt, aggs)?;
        let sort = self.out.sort();
        let body = PrintaBody {
            format: fmt.map(Format::as_str),
            msg: String::from_utf8_lossy(&o).into_owned(),
            aggregations: aggs.iter().map(|a| aggregation(a, &sort)).collect(),
        };
        self.record("printa", &body);
        Ok(())
    }

    fn stack(&mut self, frames: &[String], user: bool) {
        self.record("stack", &StackBody { user, frames });
    }

    fn end_clause(&mut self) {
        self.clause = None;
    }

    /// One `aggregation` object per non-empty aggregation printa has not printed.
    fn final_dump(&mut self, aggs: &[&AggSnapshot]) {
        let sort = self.out.sort();
        for a in self.out.unprinted(aggs) {
            if !a.entries.is_empty() {
                let l = line(&aggregation(a, &sort));
                self.out.emit(&l);
            }
        }
    }

    fn flush(&mut self) {
        self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::agg::{quantize_bucket, QUANTIZE_NBUCKETS};
    use tracer_common::{AggDesc, AggEntry};

    fn snap(name: &str, func: AggFunc, entries: Vec<AggEntry>) -> AggSnapshot {
        AggSnapshot {
            desc: AggDesc {
                name: name.into(),
                func,
                map: String::new(),
                keys: vec![],
                key_size: 8,
                max_entries: 0,
            },
            entries,
            normal: 1,
        }
    }
    fn s(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn values() {
        assert_eq!(
            value(&Value::Int {
                value: -1,
                size: 4,
                signed: false
            }),
            JValue::UInt(4294967295)
        );
        assert_eq!(
            value(&Value::Int {
                value: -1,
                size: 8,
                signed: true
            }),
            JValue::Int(-1)
        );
        assert_eq!(
            s(line(&value(&Value::Stack(vec!["a".into()])))),
            "[\"a\"]\n"
        );
        assert_eq!(s(line(&value(&Value::Bytes(vec![1, 2])))), "[1,2]\n");
    }

    #[test]
    fn aggregation_objects() {
        let a = snap(
            "a",
            AggFunc::Count,
            vec![
                AggEntry {
                    keys: vec![Value::Str("b".into())],
                    value: AggValue::Scalar(5),
                },
                AggEntry {
                    keys: vec![Value::Str("a".into())],
                    value: AggValue::Scalar(2),
                },
            ],
        );
        assert_eq!(
            s(line(&aggregation(&a, &SortOpts::default()))),
            "{\"type\":\"aggregation\",\"name\":\"@a\",\"func\":\"count\",\"entries\":[\
             {\"keys\":[\"a\"],\"value\":2},{\"keys\":[\"b\"],\"value\":5}]}\n"
        );
        let mut d = vec![0i64; QUANTIZE_NBUCKETS as usize];
        d[quantize_bucket(5) as usize] = 3;
        d[0] = 1;
        let h = snap(
            "",
            AggFunc::Quantize,
            vec![AggEntry {
                keys: vec![],
                value: AggValue::Hist(d),
            }],
        );
        assert_eq!(
            s(line(&aggregation(&h, &SortOpts::default()))),
            "{\"type\":\"aggregation\",\"name\":\"@\",\"func\":\"quantize\",\"entries\":[{\"keys\":[],\
             \"value\":{\"buckets\":[{\"min\":-9223372036854775808,\"max\":-4611686018427387904,\
             \"count\":1},{\"min\":4,\"max\":7,\"count\":3}]}}]}\n"
        );
    }

    #[test]
    fn records() {
        let p = ProbeDesc {
            id: 1,
            provider: "dtrace".into(),
            module: "".into(),
            function: "".into(),
            name: "BEGIN".into(),
        };
        assert_eq!(
            s(record(
                "printf",
                Some((&p, 2)),
                &PrintfBody { msg: "hi\n".into() }
            )),
            "{\"type\":\"printf\",\"probe\":\"dtrace:::BEGIN\",\"cpu\":2,\"msg\":\"hi\\n\"}\n"
        );
        assert_eq!(
            s(record(
                "trace",
                None,
                &TraceBody {
                    value: JValue::Int(1)
                }
            )),
            "{\"type\":\"trace\",\"value\":1}\n"
        );
        let frames = vec!["f".to_string()];
        assert_eq!(
            s(record("stack", Some((&p, 0)), &StackBody { user: true, frames: &frames })),
            "{\"type\":\"stack\",\"probe\":\"dtrace:::BEGIN\",\"cpu\":0,\"user\":true,\"frames\":[\"f\"]}\n"
        );
    }
}
