//! The maps every script has and the sizes known only after lowering: the ring buffer, the
//! drop counters, the per-CPU scratch (and its preemption guard), D's globals and the
//! speculation buffers.

use super::{pending, plan::ProbePlan, CompileError, MapSpec, Result, ScriptState};
use crate::syntax::ast::Span;
use tracer_common::script::{MapNames, NSTATS, SCRATCH_LEVELS};
use tracer_common::Options;
use tracer_ebpf::insn::map_type;

/// The kernel's limit on a per-CPU map value, which the scratch must fit.
const MAX_SCRATCH: u32 = 32 * 1024;

/// Declare the maps every program may use, before any is lowered.
pub(crate) fn declare_runtime_maps(g: &mut ScriptState, opts: &Options) {
    let nbuf = (opts.bufsize.next_power_of_two().max(4096)) as u32;
    g.add_map(MapSpec {
        name: MapNames::EVENTS.into(),
        map_type: map_type::RINGBUF,
        key_size: 0,
        value_size: 0,
        max_entries: nbuf,
    });
    g.add_map(MapSpec {
        name: MapNames::STATS.into(),
        map_type: map_type::PERCPU_ARRAY,
        key_size: 4,
        value_size: 8,
        max_entries: NSTATS,
    });
    // With the preemption guard, one scratch entry per firing that can be in flight on a
    // CPU (see `program::claim_scratch`); NMI-context programs never nest.
    let preempt_guard = g.input.preempt_guard;
    let levels = if preempt_guard { SCRATCH_LEVELS } else { 1 };
    for (name, entries) in [(MapNames::SCRATCH, levels), (MapNames::SCRATCH_NMI, 1)] {
        g.add_map(MapSpec {
            name: name.into(),
            map_type: map_type::PERCPU_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: entries,
        });
    }
    if preempt_guard {
        g.add_map(MapSpec {
            name: MapNames::BUSY.into(),
            map_type: map_type::PERCPU_ARRAY,
            key_size: 4,
            value_size: 8 * SCRATCH_LEVELS,
            max_entries: 1,
        });
    }
    g.add_map(MapSpec {
        name: MapNames::GLOBALS.into(),
        map_type: map_type::ARRAY,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
    });
    g.add_map(MapSpec {
        name: MapNames::SPECS.into(),
        map_type: map_type::ARRAY,
        key_size: 4,
        value_size: 8,
        max_entries: opts.nspec + 1,
    });
}

/// Size the scratch maps for the largest extent any program needs (with room for programs a
/// later compile adds) and the globals map for D's globals.
pub(crate) fn size_scratch_and_globals(g: &mut ScriptState, plans: &[ProbePlan]) -> Result<()> {
    let scratch_size = g.scratch_size.max(8).div_ceil(8) * 8;
    if scratch_size > MAX_SCRATCH {
        return Err(CompileError::new(
            Span::default(),
            format!("the script needs {scratch_size} bytes of per-CPU scratch; the kernel allows {MAX_SCRATCH} (lower strsize)"),
        ));
    }
    let scratch_size =
        pending::scratch_with_slack(scratch_size, plans.iter().map(|p| (&p.probe, p.late)));
    for name in [MapNames::SCRATCH, MapNames::SCRATCH_NMI] {
        let i = g.map(name).0 as usize;
        g.maps[i].value_size = scratch_size;
    }
    let globals = g.map(MapNames::GLOBALS).0 as usize;
    g.maps[globals].value_size = g.vars.globals_size().max(8);
    Ok(())
}
