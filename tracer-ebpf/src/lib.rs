//! The eBPF back end: everything that runs in the kernel is decided here.
//!
//! Pipeline inside this crate: [`ir`] (virtual-register IR produced by `tracer-lang`) →
//! [`opt`] → [`regalloc`] → [`emit`] (eBPF instructions) → [`elf`] (the in-memory object aya loads).
//! [`disasm`] prints instructions for golden tests and verifier diagnostics.

pub mod disasm;
pub mod elf;
pub mod emit;
pub mod insn;
pub mod ir;
pub mod opt;
pub mod regalloc;
