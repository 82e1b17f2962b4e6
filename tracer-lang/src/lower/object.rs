//! The ELF object from the lowered programs: one section per program, named by the program
//! type its attach point needs (aya picks the type from the section prefix), plus the maps.

use super::{CompileError, MapSpec, Result};
use crate::syntax::ast::Span;
use tracer_common::{Attach, ProgramDesc};
use tracer_ebpf::elf::{write_object, MapDef, ProgramCode};
use tracer_ebpf::insn::map_type;
use tracer_ebpf::ir::Function;

/// Hash maps created without preallocated elements (see `CompileInput::no_prealloc`).
const BPF_F_NO_PREALLOC: u32 = 1;

pub(super) fn write_elf(
    maps: &[MapSpec],
    functions: &[Function],
    emitted: &[tracer_ebpf::emit::Emitted],
    programs: &[ProgramDesc],
    no_prealloc: bool,
) -> Result<Vec<u8>> {
    let defs: Vec<MapDef> = maps
        .iter()
        .map(|m| MapDef {
            name: m.name.clone(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: match m.map_type {
                map_type::HASH | map_type::PERCPU_HASH if no_prealloc => BPF_F_NO_PREALLOC,
                _ => 0,
            },
        })
        .collect();
    let mut progs = Vec::new();
    for ((f, e), p) in functions.iter().zip(emitted).zip(programs) {
        let section = match &p.attach {
            // Run by tracer with BPF_PROG_TEST_RUN (see the runtime), never attached.
            Attach::Trigger { .. } => "raw_tracepoint",
            Attach::Uprobe { ret: false, .. } => "uprobe",
            // Never loaded (see Attach::Pending).
            Attach::Pending { .. } => "uprobe",
            Attach::Uprobe { ret: true, .. } => "uretprobe",
            Attach::Kprobe { ret: false, .. } => "kprobe",
            Attach::Kprobe { ret: true, .. } => "kretprobe",
            // Loaded by the runtime itself: aya cannot load kprobe_multi programs.
            Attach::KprobeMulti { ret: false, .. } => "kprobe",
            Attach::KprobeMulti { ret: true, .. } => "kretprobe",
            Attach::Fentry { ret: false, .. } => "fentry",
            Attach::Fentry { ret: true, .. } => "fexit",
            Attach::Tracepoint { .. } => "tracepoint",
            Attach::RawTracepoint { .. } => "raw_tracepoint",
            Attach::Perf { .. } => "perf_event",
        };
        progs.push(ProgramCode {
            name: f.name.clone(),
            section: format!("{section}/{}", f.name),
            insns: e.insns.clone(),
            map_relocs: e
                .map_relocs
                .iter()
                .map(|(i, m)| (*i, m.0 as usize))
                .collect(),
        });
    }
    write_object(&defs, &progs).map_err(|e| CompileError::new(Span::default(), format!("{e:?}")))
}
