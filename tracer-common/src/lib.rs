//! The ABI between the eBPF programs tracer generates and tracer's userspace.
//!
//! The compiler (`tracer-lang` + `tracer-ebpf`) writes records and map entries in the layouts
//! described here; the runtime (`tracer-cli`) reads them back with the same descriptions. A
//! layout has one home: this crate. It holds no logic beyond encoding and decoding.

pub mod agg;
pub mod record;
pub mod script;
pub mod value;

pub use agg::{AggDesc, AggEntry, AggFunc, AggSnapshot, AggValue};
pub use record::{ActionDesc, ActionKind, ClauseDesc, Field, FieldType, RecordHeader};
pub use script::{Attach, CompiledScript, MapInit, MapNames, Options, ProbeDesc, ProgramDesc};
pub use tracer_format::Format;
pub use value::Value;
pub mod syscalls;
