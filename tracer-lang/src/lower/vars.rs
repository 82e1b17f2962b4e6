//! Variables: where each lives and what type it has.
//!
//! - global scalars: at fixed offsets in the one-entry `globals` array map;
//! - associative arrays and thread-locals: one hash map each (thread-locals keyed by tid
//!   first), so a store of 0 deletes the entry, as DTrace frees dynamic variables;
//! - clause-locals (`this->`): at fixed offsets at the start of the per-CPU scratch value.
//!
//! The types are sema's (`sema::vars`); this file only lays the variables out.

use super::{MapSpec, ScriptState};
use crate::sema::vars::VarTypes;
use crate::types::Type;
use std::collections::BTreeMap;
use tracer_ebpf::insn::map_type;
use tracer_ebpf::ir::MapId;

/// Offset in the globals value of the run state: `RUN_BEFORE_BEGIN` until the runtime has
/// fired BEGIN (so no probe fires before BEGIN), then `RUN_ACTIVE`, then `RUN_EXITING` once
/// `exit()` ran (every probe but END returns at once, as DTrace stops its ECBs when it
/// starts draining). Probes other than BEGIN and END run only while it is `RUN_ACTIVE`.
pub const EXIT_FLAG: u32 = 0;
pub const RUN_ACTIVE: i64 = tracer_common::script::RUN_ACTIVE as i64;
pub const RUN_EXITING: i64 = tracer_common::script::RUN_EXITING as i64;

#[derive(Debug, Clone)]
pub struct Scalar {
    pub ty: Type,
    pub offset: u32,
}

#[derive(Debug, Clone)]
pub struct Dynamic {
    pub keys: Vec<Type>,
    pub value: Type,
    pub map: Option<MapId>,
    pub key_size: u32,
}

#[derive(Debug, Default, Clone)]
pub struct VarTable {
    pub globals: BTreeMap<String, Scalar>,
    globals_size: u32,
    pub assocs: BTreeMap<String, Dynamic>,
    /// Thread-locals; `keys` are the extra tuple keys of `self->a[k]`.
    pub thread: BTreeMap<String, Dynamic>,
    pub this: BTreeMap<String, Scalar>,
    this_size: u32,
}

impl VarTable {
    pub fn globals_size(&self) -> u32 {
        self.globals_size
    }
    pub fn this_size(&self) -> u32 {
        self.this_size
    }
}

/// Size of a tuple key: each element padded to 8 bytes; at least 8.
pub fn key_size(keys: &[Type], strsize: u32) -> u32 {
    let s: u32 = keys
        .iter()
        .map(|k| k.storage_size(strsize).div_ceil(8) * 8)
        .sum();
    s.max(8)
}

/// Lay out the variables whose types sema decided: scalars at fixed offsets, one hash map
/// per dynamic variable.
pub(crate) fn declare_all(g: &mut ScriptState, types: &VarTypes) {
    let strsize = g.opts.strsize;
    // Lay out scalars after the exit flag (see `EXIT_FLAG`).
    let mut off = EXIT_FLAG + 8;
    for (name, ty) in &types.globals {
        let size = ty.storage_size(strsize).div_ceil(8) * 8;
        let ty = ty.clone();
        g.vars
            .globals
            .insert(name.clone(), Scalar { ty, offset: off });
        off += size;
    }
    g.vars.globals_size = off;
    let mut off = 0;
    for (name, ty) in &types.this {
        let size = ty.storage_size(strsize).div_ceil(8) * 8;
        let ty = ty.clone();
        g.vars.this.insert(name.clone(), Scalar { ty, offset: off });
        off += size;
    }
    g.vars.this_size = off;
    // One hash map per dynamic variable; thread-locals are keyed by tid first.
    for (name, (keys, value)) in &types.assocs {
        let d = dynamic(g, &format!("a_{name}"), keys.clone(), value.clone(), false);
        g.vars.assocs.insert(name.clone(), d);
    }
    for (name, (keys, value)) in &types.thread {
        let d = dynamic(g, &format!("t_{name}"), keys.clone(), value.clone(), true);
        g.vars.thread.insert(name.clone(), d);
    }
}

/// Declare the hash map behind a dynamic variable, sized from `dynvarsize`.
fn dynamic(
    g: &mut ScriptState,
    map: &str,
    keys: Vec<Type>,
    value: Type,
    by_thread: bool,
) -> Dynamic {
    let strsize = g.opts.strsize;
    let mut all = if by_thread {
        vec![Type::ULONG]
    } else {
        Vec::new()
    };
    all.extend(keys.iter().cloned());
    let ks = key_size(&all, strsize);
    let vs = value.storage_size(strsize).div_ceil(8) * 8;
    let max = (g.opts.dynvarsize / (ks + vs + 64) as u64).clamp(1, 1 << 20) as u32;
    let map = g.add_map(MapSpec {
        name: map.into(),
        map_type: map_type::HASH,
        key_size: ks,
        value_size: vs.max(8),
        max_entries: max,
    });
    Dynamic {
        keys,
        value,
        map: Some(map),
        key_size: ks,
    }
}
