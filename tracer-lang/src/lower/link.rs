//! The last steps of the compile: the back end (`tracer_ebpf::opt`, then `emit`), one ELF
//! with every program and map (`object.rs`), and what the runtime writes into maps before
//! the programs run.

use super::{object, shared, CompileError, CompileInput, Result, ScriptState};
use super::{Scope, SCOPE_CGROUP_MAP};
use crate::syntax::ast::Span;
use tracer_common::{MapInit, ProgramDesc};
use tracer_ebpf::emit::Emitted;
use tracer_ebpf::ir::Function;

/// Optimise each function and encode it as eBPF instructions (with its line table).
pub(crate) fn optimize_and_emit(functions: &mut [Function]) -> Result<Vec<Emitted>> {
    for f in functions.iter_mut() {
        tracer_ebpf::opt::optimize(f);
    }
    functions
        .iter()
        .map(|f| tracer_ebpf::emit::emit(f).map_err(|e| CompileError::new(Span::default(), e)))
        .collect()
}

/// The ELF object: every map, and one program per function (a shared program is listed
/// once, under its leader).
pub(crate) fn write_elf(
    g: &ScriptState,
    functions: &[Function],
    emitted: &[Emitted],
    programs: &[ProgramDesc],
    input: &CompileInput,
) -> Result<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let own: Vec<ProgramDesc> = programs
        .iter()
        .filter(|p| seen.insert(p.name.clone()))
        .cloned()
        .collect();
    object::write_elf(&g.maps, functions, emitted, &own, input.no_prealloc)
}

/// Map contents the runtime writes before attaching: the site tables, and the cgroup a
/// cgroup scope watches.
pub(crate) fn map_init(g: &ScriptState, input: &CompileInput) -> Vec<MapInit> {
    let mut map_init = shared::map_init(g);
    let has_cgroup_map = g.maps.iter().any(|m| m.name == SCOPE_CGROUP_MAP);
    if let (Scope::Cgroup { fd }, true) = (input.scope, has_cgroup_map) {
        // A cgroup array slot takes the cgroup directory's descriptor as its value.
        map_init.push(MapInit {
            map: SCOPE_CGROUP_MAP.into(),
            entries: vec![(0u32.to_ne_bytes().to_vec(), fd.to_ne_bytes().to_vec())],
        });
    }
    map_init
}
