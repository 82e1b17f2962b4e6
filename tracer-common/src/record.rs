//! Ring-buffer records.
//!
//! Every clause firing that records data writes exactly one record, as DTrace's ECBs do: a
//! [`RecordHeader`] followed by the data of each action of the clause at fixed offsets. The
//! runtime finds the clause by `epid` and walks its [`ActionDesc`]s in order. Faults are
//! records too, with `epid == FAULT_EPID`.

use serde::{Deserialize, Serialize};
use tracer_format::Format;

/// Size of [`RecordHeader`] in bytes; action data starts at this offset.
pub const HEADER_SIZE: u32 = 16;

/// `epid` of a runtime-fault record, whose payload is [`FaultRecord`].
pub const FAULT_EPID: u32 = u32::MAX;

/// The first 16 bytes of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Index into `CompiledScript::clauses` (the enabled-probe id is `epid + 1`).
    pub epid: u32,
    /// CPU the probe fired on.
    pub cpu: u32,
    /// Speculation buffer the record belongs to; 0 when not speculative.
    pub spec: u32,
    /// Which probe fired, for a program that stands for many (see `ProgramDesc::sites`):
    /// its index in `CompiledScript::probes` + 1; 0 means the clause's own probe.
    pub site: u32,
}

impl RecordHeader {
    pub fn decode(bytes: &[u8]) -> Option<RecordHeader> {
        if bytes.len() < HEADER_SIZE as usize {
            return None;
        }
        let word = |i: usize| u32::from_ne_bytes(bytes[i..i + 4].try_into().unwrap());
        Some(RecordHeader {
            epid: word(0),
            cpu: word(4),
            spec: word(8),
            site: word(12),
        })
    }
}

/// Payload of a fault record (`epid == FAULT_EPID`), after the header.
/// Layout: `u32 epid` of the faulting clause, `u32 fault` code ([`Fault`]), `u64 addr`,
/// `u32 action` (1-based action index, 0 = predicate).
pub const FAULT_PAYLOAD_SIZE: u32 = 24;

/// DTrace's fault kinds (`DTRACEFLT_*`), in DTrace's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u32)]
pub enum Fault {
    BadAddr = 1,
    BadAlign = 2,
    IllOp = 3,
    DivZero = 4,
    NoScratch = 5,
}

impl Fault {
    pub fn from_code(code: u32) -> Option<Fault> {
        Some(match code {
            1 => Fault::BadAddr,
            2 => Fault::BadAlign,
            3 => Fault::IllOp,
            4 => Fault::DivZero,
            5 => Fault::NoScratch,
            _ => return None,
        })
    }

    /// DTrace's wording (`dtrace_faultstr`).
    pub fn message(self) -> &'static str {
        match self {
            Fault::BadAddr => "invalid address",
            Fault::BadAlign => "invalid alignment",
            Fault::IllOp => "illegal operation",
            Fault::DivZero => "divide-by-zero",
            Fault::NoScratch => "out of scratch space",
        }
    }
}

/// One clause as the runtime sees it: which probe it belongs to and the layout of its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClauseDesc {
    /// Index into `CompiledScript::probes`.
    pub probe: u32,
    /// Total record size including the header.
    pub size: u32,
    /// Actions in source order. Empty for a clause that records only the probe firing.
    pub actions: Vec<ActionDesc>,
}

/// One data-recording action inside a clause record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDesc {
    pub kind: ActionKind,
    /// The action's arguments, at offsets from the start of the record.
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActionKind {
    /// `trace(expr)`: one field.
    Trace,
    /// `printf(fmt, ...)`: one field per argument.
    Printf { format: Format },
    /// `printa([fmt,] @a, ...)`: aggregation indexes into `CompiledScript::aggs`. No fields.
    Printa {
        format: Option<Format>,
        aggs: Vec<u32>,
    },
    /// `clear(@a)`.
    Clear { agg: u32 },
    /// `trunc(@a[, n])`: one optional field, n.
    Trunc { agg: u32 },
    /// `normalize(@a, n)`: one field, n.
    Normalize { agg: u32 },
    /// `denormalize(@a)`.
    Denormalize { agg: u32 },
    /// `exit(status)`: one field.
    Exit,
    /// `stack([n])`: one `KStack` field.
    Stack,
    /// `ustack([n])`: one `UStack` field.
    UStack,
    /// `commit(id)`: one field, the speculation id.
    Commit,
    /// `discard(id)`: one field, the speculation id.
    Discard,
    /// `system(fmt, ...)`: like printf, the result runs through `/bin/sh -c`.
    System { format: Format },
    /// `stop()`: send SIGSTOP to the traced process (done in userspace). One field: pid.
    Stop,
    /// `setopt(name[, value])` at run time.
    Setopt { name: String, value: Option<String> },
}

/// A value at a fixed offset in a record or map key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub offset: u32,
    pub ty: FieldType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldType {
    /// An integer of 1, 2, 4 or 8 bytes.
    Int { size: u8, signed: bool },
    /// A NUL-terminated string in a buffer of `size` bytes.
    Str { size: u32 },
    /// A kernel stack: `u64 nframes` then `depth + 1` u64 instruction pointers. The spare
    /// slot is there because stacks taken from made-up registers (tracepoints, raw
    /// tracepoints) begin with the same address twice on some kernels and arches (arm64
    /// always): userspace drops the copy and still has `depth` frames.
    KStack { depth: u32 },
    /// A user stack: `u64 pid`, `u64 nframes`, then `depth` u64 instruction pointers.
    UStack { depth: u32 },
    /// A kernel address printed symbolically (`sym()`/`func()`, `%a`): u64.
    KSym,
    /// A user address printed symbolically (`usym()`/`ufunc()`, `%A`): `u64 pid`, `u64 addr`.
    USym,
    /// Raw bytes (`copyin`, `tracemem`): printed as a hex dump.
    Bytes { size: u32 },
}

impl FieldType {
    /// Bytes the field occupies.
    pub fn size(&self) -> u32 {
        match self {
            FieldType::Int { size, .. } => *size as u32,
            FieldType::Str { size } | FieldType::Bytes { size } => *size,
            FieldType::KStack { depth } => 16 + 8 * depth,
            FieldType::UStack { depth } => 16 + 8 * depth,
            FieldType::KSym => 8,
            FieldType::USym => 16,
        }
    }
}
