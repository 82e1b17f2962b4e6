//! One program: the prologue every program shares (scratch, run state, the preemption
//! guard, the scope check), then the clauses of its probe in script order.

use super::*;

pub(super) fn lower_probe(
    g: &mut Globals,
    name: &str,
    plan: &ProbePlan,
    probe_index: u32,
    clauses: &[&ast::Clause],
) -> Result<Function> {
    let mut f = Function::new(name);
    // The scratch pointer, null-checked once, and the globals pointer.
    let out = f.label();
    let zero_key = f.stack_buffer(8);
    let key = f.stack_addr(zero_key);
    f.store(key, 0, Operand::Imm(0), tracer_ebpf::insn::Size::DW);
    let nmi = matches!(plan.probe.attach, tracer_common::Attach::Perf { .. });
    let m = f.map_ptr(g.map(if nmi {
        MapNames::SCRATCH_NMI
    } else {
        MapNames::SCRATCH
    }));
    let scratch = f.call(
        tracer_ebpf::insn::helper::MAP_LOOKUP_ELEM,
        vec![m.into(), key.into()],
    );
    f.branch(tracer_ebpf::insn::JmpOp::Jeq, scratch, Operand::Imm(0), out);
    // A global-data map: loading it gives the address of its value (no lookup, no check).
    let globals = f.map_ptr(g.map(MapNames::GLOBALS));
    let is_trigger = plan.probe.desc.provider == "dtrace"
        && matches!(plan.probe.desc.name.as_str(), "BEGIN" | "END");
    if !is_trigger {
        let state = f.load(globals, vars::EXIT_FLAG as i16, tracer_ebpf::insn::Size::DW);
        f.branch(
            tracer_ebpf::insn::JmpOp::Jne,
            state,
            Operand::Imm(vars::RUN_ACTIVE),
            out,
        );
    }
    // Kernels that run probe programs preemptibly can start a second firing on this CPU
    // while the first is suspended halfway through its use of the per-CPU scratch. A busy
    // count claimed atomically keeps the second one out (dropped and counted); NMI-context
    // programs have their own scratch and cannot be preempted.
    let release = f.label();
    let guarded = g.input.preempt_guard && !nmi;
    if guarded {
        let claimed = f.label();
        let busy = f.map_ptr(g.map(MapNames::BUSY));
        let busy = f.call(
            tracer_ebpf::insn::helper::MAP_LOOKUP_ELEM,
            vec![busy.into(), key.into()],
        );
        f.branch(tracer_ebpf::insn::JmpOp::Jeq, busy, Operand::Imm(0), out);
        let before = f.vreg();
        f.push(Inst::AtomicAdd {
            dst: Some(before),
            base: busy,
            off: 0,
            val: Operand::Imm(1),
        });
        f.branch(
            tracer_ebpf::insn::JmpOp::Jeq,
            before,
            Operand::Imm(0),
            claimed,
        );
        f.push(Inst::AtomicAdd {
            dst: None,
            base: busy,
            off: 0,
            val: Operand::Imm(-1),
        });
        // Counted without touching scratch, which belongs to the preempted firing.
        f.store(
            key,
            0,
            Operand::Imm(Stat::PreemptDrops as i64),
            tracer_ebpf::insn::Size::W,
        );
        let stats = f.map_ptr(g.map(MapNames::STATS));
        let stat = f.call(
            tracer_ebpf::insn::helper::MAP_LOOKUP_ELEM,
            vec![stats.into(), key.into()],
        );
        f.branch(tracer_ebpf::insn::JmpOp::Jeq, stat, Operand::Imm(0), out);
        f.push(Inst::AtomicAdd {
            dst: None,
            base: stat,
            off: 0,
            val: Operand::Imm(1),
        });
        f.push(Inst::Jump(out));
        f.push(Inst::Label(claimed));
    }
    let this_size = g.vars.this_size();
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
        let key = l.f.stack_addr(zero_key);
        l.f.store(key, 0, Operand::Imm(0), tracer_ebpf::insn::Size::DW);
        let busy = l.f.map_ptr(l.g.map(MapNames::BUSY));
        let busy = l.f.call(
            tracer_ebpf::insn::helper::MAP_LOOKUP_ELEM,
            vec![busy.into(), key.into()],
        );
        l.f.branch(tracer_ebpf::insn::JmpOp::Jeq, busy, Operand::Imm(0), out);
        l.f.push(Inst::AtomicAdd {
            dst: None,
            base: busy,
            off: 0,
            val: Operand::Imm(-1),
        });
    }
    l.f.push(Inst::Label(out));
    l.f.push(Inst::Ret(Operand::Imm(0)));
    Ok(l.f)
}
