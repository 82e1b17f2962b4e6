//! One program: the prologue every program shares (scratch, run state, the preemption
//! guard, the scope check), then the clauses of its probe in script order.

use super::*;
use tracer_common::script::SCRATCH_LEVELS;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};

pub(super) fn lower_probe(
    g: &mut ScriptState,
    name: &str,
    plan: &ProbePlan,
    probe_index: u32,
    clauses: &[&ast::Clause],
) -> Result<Function> {
    let mut f = Function::new(name);
    let out = f.label();
    // Exits after the scratch entry is claimed go through `release`.
    let release = f.label();
    // NMI-context programs have their own scratch and cannot be preempted.
    let nmi = matches!(plan.probe.attach, tracer_common::Attach::Perf { .. });
    let guarded = g.input.preempt_guard && !nmi;
    // [0, 8): the map key (a u32, zero-extended); [8, 16), with the guard: the busy flags'
    // address, for `release` (a spilled map-value pointer).
    let key_buf = f.stack_buffer(if guarded { 16 } else { 8 });
    let key = f.stack_addr(key_buf);
    f.store(key, 0, Operand::Imm(0), Size::DW);
    // A global-data map: loading it gives the address of its value (no lookup, no check).
    let globals = f.map_ptr(g.map(MapNames::GLOBALS));
    let is_trigger = plan.probe.desc.provider == "dtrace"
        && matches!(plan.probe.desc.name.as_str(), "BEGIN" | "END");
    if !is_trigger {
        let state = f.load(globals, vars::EXIT_FLAG as i16, Size::DW);
        f.branch(JmpOp::Jne, state, Operand::Imm(vars::RUN_ACTIVE), out);
    }
    if guarded {
        claim_scratch(&mut f, g, key, out);
    }
    let m = f.map_ptr(g.map(if nmi {
        MapNames::SCRATCH_NMI
    } else {
        MapNames::SCRATCH
    }));
    let scratch = f.call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
    let this_size = g.vars.this_size();
    // With the guard, the entry's index is kept in the entry itself, right after the
    // `this->` variables: `release` reads it from there, where the verifier does not know
    // its value. Kept on the stack as a constant, it would make the verifier walk the whole
    // program once per entry (strings.d: over its million-instruction limit).
    let slot_word = this_size;
    let this_size = this_size + if guarded { 8 } else { 0 };
    if guarded {
        // The lookup of an index below max_entries cannot fail; the verifier wants the check.
        let found = f.label();
        f.branch(JmpOp::Jne, scratch, Operand::Imm(0), found);
        let slot = f.load(key, 0, Size::W);
        free_flag(&mut f, key_buf, slot);
        f.push(Inst::Jump(out));
        f.push(Inst::Label(found));
        let slot = f.load(key, 0, Size::W);
        f.store(scratch, slot_word as i16, slot, Size::W);
    } else {
        f.branch(JmpOp::Jeq, scratch, Operand::Imm(0), release);
    }
    let fault_size = tracer_common::record::HEADER_SIZE + tracer_common::record::FAULT_PAYLOAD_SIZE;
    let mut l = Lower {
        f,
        probe: plan.probe.clone(),
        probe_index,
        scratch,
        globals,
        fault_area: this_size,
        fault_label: None,
        in_error: false,
        rec_base: this_size + fault_size,
        rec_len: 0,
        temp_base: this_size + fault_size + RECORD_CAP,
        temp_top: this_size + fault_size + RECORD_CAP,
        actions: Vec::new(),
        epid: 0,
        spec: None,
        clause_end: Label(0),
        records: false,
        types: Default::default(),
        provider_exprs: 0,
        g,
    };
    // tick-N fires on a timer whatever task it interrupts: it is not an event of any
    // process, so no scope applies (`tick-1s { exit(0); }` must work in a container).
    let is_tick =
        plan.probe.desc.provider == "profile" && plan.probe.desc.name.starts_with("tick-");
    if !is_trigger && !is_tick {
        l.scope_check(release);
    }
    l.stable_guard(release)?;
    for &ci in &plan.clauses {
        l.lower_clause(clauses[ci])?;
    }
    l.f.push(Inst::Label(release));
    if guarded {
        let slot = l.f.load(l.scratch, slot_word as i16, Size::W);
        free_flag(&mut l.f, key_buf, slot);
    }
    l.f.push(Inst::Label(out));
    l.f.push(Inst::Ret(Operand::Imm(0)));
    Ok(l.f)
}

/// Clear busy flag `slot`, an index the verifier need not know (bounded here), finding the
/// flags through the address the claim left at `key_buf + 8`.
///
/// A plain store frees the flag: only firings on this CPU touch it, and a CPU sees its own
/// stores in order.
fn free_flag(f: &mut Function, key_buf: u32, slot: VReg) {
    const _: () = assert!(SCRATCH_LEVELS.is_power_of_two());
    let key = f.stack_addr(key_buf);
    let busy = f.load(key, 8, Size::DW);
    let slot = f.alu(AluOp::And, slot, Operand::Imm(SCRATCH_LEVELS as i64 - 1));
    let off = f.alu(AluOp::Lsh, slot, Operand::Imm(3));
    let flag = f.alu(AluOp::Add, busy, off);
    f.store(flag, 0, Operand::Imm(0), Size::DW);
}

/// Claim one of this CPU's `SCRATCH_LEVELS` scratch entries, leaving its index in the key at
/// `key` and the busy flags' address at `key + 8`; with every entry in use, count the firing
/// as dropped and leave for `out`.
///
/// Kernels that run probe programs preemptibly can start a second firing on this CPU while
/// the first is suspended halfway through its use of the scratch, so each firing takes its
/// own entry. Each flag is taken by exchange rather than by counting nesting depth: firings
/// of preempted tasks do not finish in stack order, so "depth" would name an entry still in
/// use.
fn claim_scratch(f: &mut Function, g: &mut ScriptState, key: VReg, out: Label) {
    let claimed = f.label();
    let busy = f.map_ptr(g.map(MapNames::BUSY));
    let busy = f.call(helper::MAP_LOOKUP_ELEM, vec![busy.into(), key.into()]);
    f.branch(JmpOp::Jeq, busy, Operand::Imm(0), out);
    f.store(key, 8, busy, Size::DW);
    // Entry 0, the common case, costs no more: the key is already 0.
    for slot in 0..SCRATCH_LEVELS as i16 {
        if slot > 0 {
            f.store(key, 0, Operand::Imm(slot.into()), Size::W);
        }
        let was = f.vreg();
        f.push(Inst::AtomicXchg {
            dst: was,
            base: busy,
            off: slot * 8,
            val: Operand::Imm(1),
        });
        f.branch(JmpOp::Jeq, was, Operand::Imm(0), claimed);
    }
    // Counted without touching scratch, which belongs to the preempted firings.
    f.store(key, 0, Operand::Imm(Stat::PreemptDrops as i64), Size::W);
    let stats = f.map_ptr(g.map(MapNames::STATS));
    let stat = f.call(helper::MAP_LOOKUP_ELEM, vec![stats.into(), key.into()]);
    f.branch(JmpOp::Jeq, stat, Operand::Imm(0), out);
    f.push(Inst::AtomicAdd {
        dst: None,
        base: stat,
        off: 0,
        val: Operand::Imm(1),
    });
    f.push(Inst::Jump(out));
    f.push(Inst::Label(claimed));
}
