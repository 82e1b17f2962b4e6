//! Lowering: a checked D script becomes one IR function per probe, plus the maps, clause
//! records and aggregation descriptions the runtime needs. Types are sema's: `compile` asks
//! `sema` for every variable's type before lowering, and each clause's expressions are typed
//! by `sema::typeck` for the probe being lowered (`Lower::types`).
//!
//! [`compile`] is the list of steps, each in its own file: resolve the descriptions into
//! plans (`plan.rs`), declare the runtime's maps (`layout.rs`), decide variable types
//! (sema), decide which probes share a program (`shared.rs`), lower each program
//! (`program.rs` and the statement, expression and action files), size the scratch
//! (`layout.rs`), then optimise, emit and link the ELF (`link.rs`, `object.rs`).
//!
//! Per program the layout is fixed: r1 (ctx) is `Function::CTX`; the per-CPU scratch value
//! holds `this->` variables first, then the record of the clause being run, then temporaries
//! (strings, keys). Clauses of one probe run in script order inside one program, as DTrace
//! runs the ECBs of one probe.

mod actions;
mod agg;
mod builtins;
mod expr;
mod kernel;
mod layout;
mod link;
mod object;
mod pending;
mod plan;
mod program;
mod scope;
mod shared;
mod stable;
mod stmt;
mod strings;
mod uregs;
mod vars;

use crate::probes::{ProbeResolver, ResolvedProbe};
use crate::syntax::ast::{self, Item, Span};
pub(crate) use plan::full_description;
use plan::{is_error_probe, lowering_order, ProbePlan};
use std::collections::BTreeMap;
use tracer_common::script::{MapNames, Stat};
use tracer_common::{AggDesc, ClauseDesc, CompiledScript, Options, ProgramDesc, RecordHeader};
use tracer_ebpf::insn::map_type;
use tracer_ebpf::ir::{Function, Inst, Label, MapId, Operand, VReg};

pub use pending::{names_process, PENDING_SCRATCH_SLACK};
pub use scope::{CgroupOffsets, NsOffsets, PidOffsets, Scope, SCOPE_CGROUP_MAP};
pub use vars::VarTable;

pub use crate::diag::{CompileError, Result};

/// A map the object declares.
#[derive(Debug, Clone, PartialEq)]
pub struct MapSpec {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// Everything the compiler needs besides the script.
pub struct CompileInput<'a> {
    pub script: &'a ast::Script,
    pub options: Options,
    /// `$0`, `$1`, … as given on the command line (`$0` is the script name).
    pub macro_args: Vec<String>,
    /// `$target`, from `-c` or `-p`.
    pub target: Option<u32>,
    /// `-Z`: descriptions that match nothing are not an error.
    pub allow_zero_matches: bool,
    /// Maps a span to its packed [`crate::diag::SourceLine`] (for the verifier line table).
    pub line_of: &'a dyn Fn(Span) -> u32,
    /// ns to add to `bpf_ktime_get_ns()` for `walltimestamp`.
    pub boot_to_wall_ns: i64,
    /// `task_struct` offsets from kernel BTF (for `ppid`), when BTF is available.
    /// Asked only when a script needs them: reading kernel BTF costs tens of milliseconds.
    pub task_offsets: &'a dyn Fn() -> Option<TaskOffsets>,
    /// Give each firing its own per-CPU scratch entry, so that a firing that starts on a CPU
    /// while another is preempted there does not overwrite its scratch (needs BPF atomic
    /// exchange, Linux 5.12+).
    pub preempt_guard: bool,
    /// Kernel types (BTF) for struct members, casts and fbt arguments, read on first use.
    pub kernel_types: &'a crate::btf::KernelTypes,
    /// Create hash maps without preallocating their elements (BPF_F_NO_PREALLOC): instant
    /// creation and memory only for keys in use. Kernels before 6.1 refuse such maps in
    /// perf-event programs, so the caller decides from the running kernel.
    pub no_prealloc: bool,
    /// Which tasks the programs see (checked first in every program) and which pid
    /// namespace numbers `pid`/`tid`/`ppid`.
    pub scope: Scope,
    /// Pid-namespace and cgroup offsets from kernel BTF, for `pidns`, `cgroup` and
    /// `container`. Asked only when a script uses them.
    pub ns_offsets: &'a dyn Fn() -> Option<NsOffsets>,
    /// The kernel gives uprobes a BPF cookie (5.15+): pid probes running the same clauses
    /// share one program (see `shared.rs`).
    pub attach_cookies: bool,
}

/// Offsets inside `struct task_struct` found through BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOffsets {
    pub real_parent: u32,
    pub tgid: u32,
    /// `se.sum_exec_runtime`: the thread's on-CPU nanoseconds (`vtimestamp`).
    pub sum_exec_runtime: u32,
}

/// The compiler's output: the runtime's script plus the IR and machine code for golden tests
/// and verifier diagnostics.
pub struct Compiled {
    pub script: CompiledScript,
    pub functions: Vec<Function>,
    pub emitted: Vec<tracer_ebpf::emit::Emitted>,
    pub maps: Vec<MapSpec>,
    /// How many probes each description matched, for the `matched N probes` notice.
    pub matched: usize,
}

/// What the whole compile shares while programs are lowered (`self.g` in [`Lower`]): the
/// maps declared so far, clause and aggregation descriptions, variable layout and types.
pub(crate) struct ScriptState<'a> {
    pub input: &'a CompileInput<'a>,
    pub opts: Options,
    pub vars: VarTable,
    pub maps: Vec<MapSpec>,
    pub aggs: Vec<AggDesc>,
    pub clauses: Vec<ClauseDesc>,
    /// The variable types sema decided (the layout is in `vars`).
    pub types: crate::sema::vars::VarTypes,
    /// Largest scratch extent any program needs.
    pub scratch_size: u32,
    /// dtrace:::ERROR: its probe, its index in the probe list, and its clauses, which are
    /// lowered inline after every clause that can fault.
    pub error: Option<(ResolvedProbe, u32, Vec<ast::Clause>)>,
    /// Per aggregation, the longest string each key position can hold across every use in
    /// the script (None: up to strsize). Short keys hash and copy faster.
    pub agg_key_bounds: BTreeMap<String, Vec<Option<u32>>>,
    /// The programs that stand for many probes, and their sites (see `shared.rs`).
    pub sites: shared::SiteTable,
}

impl<'a> ScriptState<'a> {
    fn new(
        input: &'a CompileInput<'a>,
        opts: &Options,
        plans: &[ProbePlan],
        clauses: &[&ast::Clause],
    ) -> ScriptState<'a> {
        ScriptState {
            input,
            opts: opts.clone(),
            vars: VarTable::default(),
            maps: Vec::new(),
            aggs: Vec::new(),
            clauses: Vec::new(),
            types: Default::default(),
            scratch_size: 0,
            agg_key_bounds: agg::key_bounds(clauses),
            sites: Default::default(),
            error: plans
                .iter()
                .enumerate()
                .find(|(_, p)| is_error_probe(&p.probe))
                .map(|(i, p)| {
                    (
                        p.probe.clone(),
                        i as u32,
                        p.clauses.iter().map(|&c| clauses[c].clone()).collect(),
                    )
                }),
        }
    }

    pub fn map(&self, name: &str) -> MapId {
        MapId(
            self.maps
                .iter()
                .position(|m| m.name == name)
                .expect("map declared") as u32,
        )
    }

    /// A read-only run of at least `len` zero bytes, addressed directly (a global-data map,
    /// declared on first use): the initial value of a new map entry, which saves zeroing
    /// scratch on every first insert.
    pub fn zeros_map(&mut self, len: u32) -> MapId {
        const NAME: &str = ".data.zeros";
        let len = len.div_ceil(8) * 8;
        if let Some(i) = self.maps.iter().position(|m| m.name == NAME) {
            self.maps[i].value_size = self.maps[i].value_size.max(len);
            return MapId(i as u32);
        }
        self.add_map(MapSpec {
            name: NAME.into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: len,
            max_entries: 1,
        })
    }

    pub fn add_map(&mut self, spec: MapSpec) -> MapId {
        self.maps.push(spec);
        MapId(self.maps.len() as u32 - 1)
    }
}

/// Apply `#pragma D option` lines to the options.
pub fn apply_pragmas(script: &ast::Script, opts: &mut Options) -> Result<()> {
    for item in &script.items {
        if let Item::Pragma { words, span } = item {
            if words.first().map(String::as_str) == Some("D")
                && words.get(1).map(String::as_str) == Some("option")
            {
                let rest = words[2..].join("");
                let (name, value) = match rest.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (rest.clone(), None),
                };
                crate::options::set_option(opts, &name, value.as_deref())
                    .map_err(|e| CompileError::new(*span, e))?;
            }
        }
    }
    Ok(())
}

/// Compile a script: a list of named steps, each in the file named after it.
pub fn compile(input: &CompileInput, resolver: &mut dyn ProbeResolver) -> Result<Compiled> {
    let mut opts = input.options.clone();
    apply_pragmas(input.script, &mut opts)?;
    let clauses = script_clauses(input.script);
    let plan::Plans { plans, matched } = plan::resolve(input, resolver, &clauses)?;
    let mut g = ScriptState::new(input, &opts, &plans, &clauses);
    layout::declare_runtime_maps(&mut g, &opts);
    type_variables(&mut g, &plans, &clauses)?;
    let slots = plan::ProbeSlots::new(&plans);
    let leaders = shared::plan(
        &mut g,
        &plans
            .iter()
            .map(|p| (&p.probe, p.clauses.as_slice()))
            .collect::<Vec<_>>(),
        &plans.iter().map(|p| p.late > 0).collect::<Vec<_>>(),
        &|pi| slots.slot(pi),
        slots.first_site as u32,
    );
    let names = program_names(&plans);
    let mut functions = lower_programs(&mut g, &plans, &leaders, &names, &slots, &clauses)?;
    let programs = program_descs(&g, &plans, &leaders, &names, &slots);
    let probes = slots.probes(&plans);
    layout::size_scratch_and_globals(&mut g, &plans)?;
    let emitted = link::optimize_and_emit(&mut functions)?;
    let elf = link::write_elf(&g, &functions, &emitted, &programs, input)?;
    let map_init = link::map_init(&g, input);
    let map_sizes = g
        .maps
        .iter()
        .map(|m| (m.name.clone(), m.max_entries))
        .collect();
    let script = CompiledScript {
        elf,
        programs,
        probes,
        clauses: g.clauses,
        aggs: g.aggs,
        options: opts,
        map_sizes,
        map_init,
    };
    Ok(Compiled {
        script,
        functions,
        emitted,
        maps: g.maps,
        matched,
    })
}

/// The script's clauses, in source order.
fn script_clauses(script: &ast::Script) -> Vec<&ast::Clause> {
    script
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Clause(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Sema decides every variable's type, each clause typed against the first probe it is
/// lowered for; lowering lays the variables out.
fn type_variables(
    g: &mut ScriptState,
    plans: &[ProbePlan],
    clauses: &[&ast::Clause],
) -> Result<()> {
    let input = g.input;
    let lowering = lowering_order(plans);
    let clause_args: Vec<crate::probes::ArgSource> = (0..clauses.len())
        .map(|ci| {
            lowering
                .iter()
                .copied()
                .chain(0..plans.len())
                .find(|&pi| plans[pi].clauses.contains(&ci))
                .map_or(crate::probes::ArgSource::None, |pi| {
                    plans[pi].probe.args.clone()
                })
        })
        .collect();
    let typing: Vec<crate::sema::vars::ClauseTyping> = clauses
        .iter()
        .zip(&clause_args)
        .map(|(clause, args)| crate::sema::vars::ClauseTyping { clause, args })
        .collect();
    crate::sema::check::script(input.script)?;
    let types = crate::sema::vars::decide(input.script, &typing, input.kernel_types)?;
    vars::declare_all(g, &types);
    g.types = types;
    Ok(())
}

/// `p<ID>`; the further sites of a USDT probe (same ID) get `p<ID>_<k>`.
fn program_names(plans: &[ProbePlan]) -> Vec<String> {
    (0..plans.len())
        .map(|pi| {
            let id = plans[pi].probe.desc.id;
            match plans[..pi].iter().filter(|p| p.probe.desc.id == id).count() {
                0 => format!("p{id}"),
                k => format!("p{id}_{k}"),
            }
        })
        .collect()
}

/// One IR function per program, lowered in script order (by each probe's first clause), so
/// that "defined before this point" means what it says in the source; the functions come
/// out in probe-ID order. A shared program is lowered once, for its leader; ERROR has no
/// program of its own.
fn lower_programs(
    g: &mut ScriptState,
    plans: &[ProbePlan],
    leaders: &[usize],
    names: &[String],
    slots: &plan::ProbeSlots,
    clauses: &[&ast::Clause],
) -> Result<Vec<Function>> {
    let mut lowered: Vec<Option<Function>> = vec![None; plans.len()];
    for pi in lowering_order(plans) {
        if leaders[pi] != pi {
            continue;
        }
        lowered[pi] = Some(program::lower_probe(
            g,
            &names[pi],
            &plans[pi],
            slots.slot(pi),
            clauses,
        )?);
    }
    Ok(lowered.into_iter().flatten().collect())
}

/// What the runtime attaches: one description per probe (a shared program's probes name
/// its leader's program and carry their sites).
fn program_descs(
    g: &ScriptState,
    plans: &[ProbePlan],
    leaders: &[usize],
    names: &[String],
    slots: &plan::ProbeSlots,
) -> Vec<ProgramDesc> {
    plans
        .iter()
        .enumerate()
        .filter(|(_, plan)| !is_error_probe(&plan.probe))
        .map(|(pi, plan)| ProgramDesc {
            name: names[leaders[pi]].clone(),
            probe: slots.slot(pi),
            attach: plan.probe.attach.clone(),
            sites: match g.sites.programs.get(&slots.slot(leaders[pi])) {
                Some((crate::probes::Sharing::Uprobes, _)) => vec![slots.slot(pi)],
                Some(_) => slots.site_range[pi].clone().collect(),
                None => Vec::new(),
            },
        })
        .collect()
}

/// Per-program lowering state.
pub(crate) struct Lower<'g, 'a> {
    pub g: &'g mut ScriptState<'a>,
    pub f: Function,
    pub probe: ResolvedProbe,
    pub probe_index: u32,
    /// Pointer to the per-CPU scratch value.
    pub scratch: VReg,
    /// Pointer to the globals value.
    pub globals: VReg,
    /// Offset in scratch where this clause's record starts, and the bump offset inside it.
    pub rec_base: u32,
    pub rec_len: u32,
    /// Temporaries bump allocator (offset in scratch), reset per clause.
    pub temp_base: u32,
    pub temp_top: u32,
    /// The current clause's actions.
    pub actions: Vec<tracer_common::ActionDesc>,
    pub epid: u32,
    /// Speculation id register, when `speculate()` ran in this clause.
    pub spec: Option<VReg>,
    /// Where a fault or a failed predicate sends control: the end of the clause.
    pub clause_end: Label,
    /// Any non-aggregation statement recorded data (decides whether the record is sent).
    pub records: bool,
    /// Where the fault record is built (fixed, so ERROR clauses can read it).
    pub fault_area: u32,
    /// Target of faults in the current clause when ERROR clauses exist.
    pub fault_label: Option<Label>,
    /// Lowering an ERROR clause inline.
    pub in_error: bool,
    /// Sema's type of every expression of the clause being lowered, for this probe.
    pub types: crate::sema::typeck::ExprTypes,
    /// Inside a stable provider's expression (parsed from the provider's text, so not in
    /// `types`: its spans are not the script's).
    pub provider_exprs: u32,
}

/// Bytes reserved for one clause's record.
pub(crate) const RECORD_CAP: u32 = 12 * 1024;

impl<'g, 'a> Lower<'g, 'a> {
    pub fn line(&mut self, span: Span) {
        let line = (self.g.input.line_of)(span);
        self.f.push(Inst::Line(line));
    }

    /// A pointer `scratch + off`.
    pub fn scratch_ptr(&mut self, off: u32) -> VReg {
        self.f.alu(
            tracer_ebpf::insn::AluOp::Add,
            self.scratch,
            Operand::Imm(off as i64),
        )
    }

    /// Reserve `len` bytes of scratch for a temporary in this clause.
    pub fn temp(&mut self, len: u32) -> u32 {
        let off = self.temp_top;
        self.temp_top += len.div_ceil(8) * 8;
        self.g.scratch_size = self.g.scratch_size.max(self.temp_top);
        off
    }

    /// Increment a `stats` counter.
    pub fn bump_stat(&mut self, stat: Stat) {
        use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
        let slot = self.temp(8);
        let key = self.scratch_ptr(slot);
        self.f.store(key, 0, Operand::Imm(stat as i64), Size::W);
        let m = self.f.map_ptr(self.g.map(MapNames::STATS));
        let p = self
            .f
            .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
        let skip = self.f.label();
        self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), skip);
        let v = self.f.load(p, 0, Size::DW);
        let v2 = self.f.alu(AluOp::Add, v, Operand::Imm(1));
        self.f.store(p, 0, v2, Size::DW);
        self.f.push(Inst::Label(skip));
    }

    fn lower_clause(&mut self, clause: &ast::Clause) -> Result<()> {
        // Reserve this clause's EPID now: ERROR clauses lowered inside it take the next ones.
        self.epid = self.g.clauses.len() as u32;
        self.g.clauses.push(ClauseDesc {
            probe: self.probe_index,
            size: 0,
            actions: Vec::new(),
        });
        self.rec_len = tracer_common::record::HEADER_SIZE;
        if !self.in_error {
            self.temp_top = self.temp_base;
        }
        self.actions.clear();
        self.spec = None;
        self.records = false;
        self.fault_label = None;
        self.clause_end = self.f.label();
        self.types = self.clause_types(clause);
        self.line(clause.span);
        if let Some(pred) = &clause.predicate {
            self.line(pred.span);
            crate::sema::check::condition(&self.typer(), pred)?;
            let end = self.clause_end;
            self.cond_branch(pred, false, end)?;
        }
        let only_aggs = !clause.body.is_empty()
            && clause.body.iter().all(|s| matches!(s, ast::Stmt::Expr(e) if matches!(e.node, ast::ExprKind::Aggregate{..})));
        for s in &clause.body {
            self.stmt(s)?;
        }
        let send = if self.g.opts.quiet {
            !self.actions.is_empty()
        } else {
            !only_aggs
        };
        if send {
            self.submit_record();
        }
        let epid = self.epid;
        self.g.clauses[epid as usize] = ClauseDesc {
            probe: self.probe_index,
            size: self.rec_len,
            actions: self.actions.clone(),
        };
        if let Some(fault) = self.fault_label {
            let end = self.clause_end;
            self.f.push(Inst::Jump(end));
            self.f.push(Inst::Label(fault));
            self.lower_error_clauses()?;
            self.clause_end = end;
        }
        self.f.push(Inst::Label(self.clause_end));
        Ok(())
    }

    /// Run the ERROR clauses here, in the faulting clause's program.
    fn lower_error_clauses(&mut self) -> Result<()> {
        let Some((probe, index, clauses)) = self.g.error.clone() else {
            return Ok(());
        };
        let saved = (self.probe.clone(), self.probe_index, self.epid);
        self.probe = probe;
        self.probe_index = index;
        self.in_error = true;
        let types = std::mem::take(&mut self.types);
        for c in &clauses {
            self.lower_clause(c)?;
        }
        self.types = types;
        self.in_error = false;
        (self.probe, self.probe_index, self.epid) = saved;
        Ok(())
    }

    /// Fill in the header and send the record to the ring buffer, counting a drop on failure.
    fn submit_record(&mut self) {
        use tracer_ebpf::insn::{helper, JmpOp, Size};
        let rec = self.scratch_ptr(self.rec_base);
        let at = |word: u32| word as i16;
        self.f.store(
            rec,
            at(RecordHeader::EPID),
            Operand::Imm(self.epid as i64),
            Size::W,
        );
        let cpu = self.f.call(helper::GET_SMP_PROCESSOR_ID, vec![]);
        self.f.store(rec, at(RecordHeader::CPU), cpu, Size::W);
        let spec = self.spec.map_or(Operand::Imm(0), Operand::from);
        self.f.store(rec, at(RecordHeader::SPEC), spec, Size::W);
        // One program standing for many probes names the one that fired: site index + 1.
        let site = if self.shared_sites() {
            Operand::from(self.site_word())
        } else {
            Operand::Imm(0)
        };
        self.f.store(rec, at(RecordHeader::SITE), site, Size::W);
        let sent = self.f.label();
        if let Some(id) = self.spec {
            // speculate() on a failed speculation: the data is dropped and counted.
            let ok = self.f.label();
            self.f.branch(JmpOp::Jne, id, Operand::Imm(0), ok);
            self.bump_stat(Stat::SpecDrops);
            self.f.push(Inst::Jump(sent));
            self.f.push(Inst::Label(ok));
        }
        let m = self.f.map_ptr(self.g.map(MapNames::EVENTS));
        let len = self.rec_len.div_ceil(8) * 8;
        let r = self.f.call(
            helper::RINGBUF_OUTPUT,
            vec![
                m.into(),
                rec.into(),
                Operand::Imm(len as i64),
                Operand::Imm(0),
            ],
        );
        self.f.branch(JmpOp::Jeq, r, Operand::Imm(0), sent);
        self.bump_stat(Stat::Drops);
        self.f.push(Inst::Label(sent));
    }

    /// Reserve `size` bytes in the current record; returns the offset from the record start.
    pub fn rec_field(&mut self, size: u32, span: Span) -> Result<u32> {
        let align = if size >= 8 {
            8
        } else {
            size.next_power_of_two().max(1)
        };
        let off = self.rec_len.div_ceil(align) * align;
        if off + size > RECORD_CAP {
            return Err(CompileError::new(
                span,
                "this clause records more data than fits in one record (lower strsize)",
            ));
        }
        self.rec_len = off + size;
        self.g.scratch_size = self.g.scratch_size.max(self.rec_base + self.rec_len);
        Ok(off)
    }
}
