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

/// `epid` of a runtime-fault record, whose payload is a [`FaultPayload`].
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

/// The native-endian `u32` at `off`, if the bytes reach that far.
fn u32_at(bytes: &[u8], off: u32) -> Option<u32> {
    let off = off as usize;
    Some(u32::from_ne_bytes(
        bytes.get(off..off + 4)?.try_into().ok()?,
    ))
}

/// The native-endian `u64` at `off`, if the bytes reach that far.
fn u64_at(bytes: &[u8], off: u32) -> Option<u64> {
    let off = off as usize;
    Some(u64::from_ne_bytes(
        bytes.get(off..off + 8)?.try_into().ok()?,
    ))
}

impl RecordHeader {
    /// Byte offsets of the header's `u32` words: the generated code stores at these, and
    /// [`RecordHeader::decode`] reads them.
    pub const EPID: u32 = 0;
    pub const CPU: u32 = 4;
    pub const SPEC: u32 = 8;
    pub const SITE: u32 = 12;

    pub fn decode(bytes: &[u8]) -> Option<RecordHeader> {
        Some(RecordHeader {
            epid: u32_at(bytes, Self::EPID)?,
            cpu: u32_at(bytes, Self::CPU)?,
            spec: u32_at(bytes, Self::SPEC)?,
            site: u32_at(bytes, Self::SITE)?,
        })
    }
}

/// Size of a fault record's payload, after the header.
pub const FAULT_PAYLOAD_SIZE: u32 = 24;

/// The payload of a fault record (`epid == FAULT_EPID`): which clause faulted, how, where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPayload {
    /// The faulting clause (index into `CompiledScript::clauses`).
    pub epid: u32,
    /// The fault code ([`Fault`]).
    pub code: u32,
    /// The address that faulted (for bad address and alignment faults).
    pub addr: u64,
    /// 1-based action index; 0 = the predicate.
    pub action: u32,
}

impl FaultPayload {
    /// Byte offsets from the start of the record: `u32 epid`, `u32 code`, `u64 addr`, and
    /// `action` stored as a `u64` (read as its low `u32`).
    pub const EPID: u32 = HEADER_SIZE;
    pub const CODE: u32 = HEADER_SIZE + 4;
    pub const ADDR: u32 = HEADER_SIZE + 8;
    pub const ACTION: u32 = HEADER_SIZE + 16;

    /// The payload of a whole fault record (header included).
    pub fn decode(record: &[u8]) -> Option<FaultPayload> {
        Some(FaultPayload {
            epid: u32_at(record, Self::EPID)?,
            code: u32_at(record, Self::CODE)?,
            addr: u64_at(record, Self::ADDR)?,
            action: u32_at(record, Self::ACTION)?,
        })
    }
}

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

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn headers_and_fault_payloads_decode_from_their_offsets() {
        let mut rec = vec![0u8; (HEADER_SIZE + FAULT_PAYLOAD_SIZE) as usize];
        let put = |rec: &mut Vec<u8>, off: u32, bytes: &[u8]| {
            rec[off as usize..off as usize + bytes.len()].copy_from_slice(bytes)
        };
        put(&mut rec, RecordHeader::EPID, &FAULT_EPID.to_ne_bytes());
        put(&mut rec, RecordHeader::CPU, &3u32.to_ne_bytes());
        put(&mut rec, RecordHeader::SITE, &7u32.to_ne_bytes());
        put(&mut rec, FaultPayload::EPID, &2u32.to_ne_bytes());
        put(
            &mut rec,
            FaultPayload::CODE,
            &(Fault::BadAddr as u32).to_ne_bytes(),
        );
        put(&mut rec, FaultPayload::ADDR, &0xdead_beefu64.to_ne_bytes());
        put(&mut rec, FaultPayload::ACTION, &4u64.to_ne_bytes());
        let h = RecordHeader::decode(&rec).unwrap();
        assert_eq!((h.epid, h.cpu, h.spec, h.site), (FAULT_EPID, 3, 0, 7));
        let f = FaultPayload::decode(&rec).unwrap();
        assert_eq!((f.epid, f.code, f.addr, f.action), (2, 1, 0xdead_beef, 4));
        assert_eq!(FaultPayload::ACTION + 8, HEADER_SIZE + FAULT_PAYLOAD_SIZE);
        assert!(RecordHeader::decode(&rec[..12]).is_none());
    }
}
