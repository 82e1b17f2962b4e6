//! Real-kernel tests of the runtime (root, tracepoints, uprobes, perf events). Programs are
//! built by hand with `insn.rs` and `elf.rs`. The tests share one lock: triggers are
//! process-wide, so two sessions must not be alive at once, and mapping this binary (as
//! symbolizers do) while a uprobe with a semaphore is registered bumps the semaphore again.

use super::*;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tracer_common::record::HEADER_SIZE;
use tracer_common::{
    ActionDesc, ActionKind, AggDesc, AggFunc, AggValue, Attach, ClauseDesc, Field, FieldType,
    Options, ProbeDesc, ProgramDesc, Value,
};
use tracer_ebpf::elf::{write_object, MapDef, ProgramCode};
use tracer_ebpf::insn::{helper, map_type, AluOp, Insn, JmpOp, Reg, Size};

mod slots;

static KERNEL: Mutex<()> = Mutex::new(());

pub(crate) fn lock() -> std::sync::MutexGuard<'static, ()> {
    KERNEL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny assembler with forward labels.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    relocs: Vec<(usize, usize)>,
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn i(&mut self, insn: Insn) -> &mut Self {
        self.insns.push(insn);
        self
    }
    fn map(&mut self, dst: Reg, map: usize) -> &mut Self {
        self.relocs.push((self.insns.len(), map));
        self.insns.extend(Insn::ld_map_fd(dst));
        self
    }
    fn jmp(&mut self, op: JmpOp, r: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), label));
        self.i(Insn::jmp_imm(op, r, imm, 0))
    }
    fn label(&mut self, l: &'static str) -> &mut Self {
        self.labels.push((l, self.insns.len()));
        self
    }
    fn stack_ptr(&mut self, dst: Reg, off: i32) -> &mut Self {
        self.i(Insn::mov64_reg(dst, Reg::FP))
            .i(Insn::alu64_imm(AluOp::Add, dst, off))
    }
    /// Emit a record of `epid` carrying `r6` as an 8-byte payload.
    fn record(&mut self, events: usize, epid: i32) -> &mut Self {
        self.i(Insn::call(helper::GET_SMP_PROCESSOR_ID))
            .i(Insn::st_imm(Size::W, Reg::FP, -24, epid))
            .i(Insn::stx(Size::W, Reg::FP, -20, Reg::R0))
            .i(Insn::st_imm(Size::DW, Reg::FP, -16, 0))
            .i(Insn::stx(Size::DW, Reg::FP, -8, Reg::R6))
            .map(Reg::R1, events)
            .stack_ptr(Reg::R2, -24)
            .i(Insn::mov64_imm(Reg::R3, 24))
            .i(Insn::mov64_imm(Reg::R4, 0))
            .i(Insn::call(helper::RINGBUF_OUTPUT))
    }
    /// `map[key]++` on a (per-CPU) hash or array with 8-byte values, creating the key.
    fn increment(&mut self, map: usize, key_size: Size, key: i32, done: &'static str) -> &mut Self {
        let k = -(key_size.bytes() as i32);
        self.i(Insn::st_imm(key_size, Reg::FP, k as i16, key))
            .i(Insn::st_imm(Size::DW, Reg::FP, -16, 0))
            .map(Reg::R1, map)
            .stack_ptr(Reg::R2, k)
            .i(Insn::call(helper::MAP_LOOKUP_ELEM))
            .jmp(JmpOp::Jne, Reg::R0, 0, "found")
            .map(Reg::R1, map)
            .stack_ptr(Reg::R2, k)
            .stack_ptr(Reg::R3, -16)
            .i(Insn::mov64_imm(Reg::R4, 0))
            .i(Insn::call(helper::MAP_UPDATE_ELEM))
            .map(Reg::R1, map)
            .stack_ptr(Reg::R2, k)
            .i(Insn::call(helper::MAP_LOOKUP_ELEM))
            .jmp(JmpOp::Jeq, Reg::R0, 0, done)
            .label("found")
            .i(Insn::ldx(Size::DW, Reg::R1, Reg::R0, 0))
            .i(Insn::alu64_imm(AluOp::Add, Reg::R1, 1))
            .i(Insn::stx(Size::DW, Reg::R0, 0, Reg::R1))
    }
    fn exit(&mut self) -> &mut Self {
        self.label("exit")
            .i(Insn::mov64_imm(Reg::R0, 0))
            .i(Insn::exit())
    }
    fn finish(&mut self, name: &str, section: &str) -> ProgramCode {
        for &(at, label) in &self.fixups {
            let to = self.labels.iter().find(|l| l.0 == label).expect(label).1;
            self.insns[at].off = (to as isize - at as isize - 1) as i16;
        }
        ProgramCode {
            name: name.into(),
            section: section.into(),
            insns: std::mem::take(&mut self.insns),
            map_relocs: std::mem::take(&mut self.relocs),
        }
    }
}

fn map(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
    }
}

/// Maps 0 = events, 1 = stats, 2 = agg (PERCPU_HASH u64 → u64), 3 = hits (PERCPU_ARRAY).
fn standard_maps() -> Vec<MapDef> {
    vec![
        map("events", map_type::RINGBUF, 0, 0, 1 << 16),
        map(
            "stats",
            map_type::PERCPU_ARRAY,
            4,
            8,
            tracer_common::script::NSTATS,
        ),
        map("agg_n", map_type::PERCPU_HASH, 8, 8, 64),
        map("hits", map_type::PERCPU_ARRAY, 4, 8, 1),
    ]
}

fn probe(id: u32, provider: &str, function: &str, name: &str) -> ProbeDesc {
    ProbeDesc {
        id,
        provider: provider.into(),
        module: String::new(),
        function: function.into(),
        name: name.into(),
    }
}

fn trace_clause(probe: u32) -> ClauseDesc {
    let field = Field {
        offset: HEADER_SIZE,
        ty: FieldType::Int {
            size: 8,
            signed: false,
        },
    };
    ClauseDesc {
        probe,
        size: 24,
        actions: vec![ActionDesc {
            kind: ActionKind::Trace,
            fields: vec![field],
        }],
    }
}

fn count_agg() -> AggDesc {
    AggDesc {
        name: "n".into(),
        func: AggFunc::Count,
        map: "agg_n".into(),
        keys: vec![Field {
            offset: 0,
            ty: FieldType::Int {
                size: 8,
                signed: true,
            },
        }],
        key_size: 8,
        max_entries: 64,
    }
}

/// One probe (and clause) per program, in order.
fn script(programs: Vec<(ProgramCode, ProbeDesc, Attach)>) -> CompiledScript {
    let mut s = CompiledScript {
        elf: Vec::new(),
        programs: Vec::new(),
        probes: Vec::new(),
        clauses: Vec::new(),
        aggs: vec![count_agg()],
        options: Options::default(),
        map_sizes: vec![("events".into(), 1 << 18)],
        map_init: Vec::new(),
    };
    let mut codes = Vec::new();
    for (i, (code, probe, attach)) in programs.into_iter().enumerate() {
        s.programs.push(ProgramDesc {
            name: code.name.clone(),
            probe: i as u32,
            attach,
            sites: Vec::new(),
        });
        s.probes.push(probe);
        s.clauses.push(trace_clause(i as u32));
        codes.push(code);
    }
    s.elf = write_object(&standard_maps(), &codes).unwrap();
    s
}

fn tracepoint_getppid(tgid: u32) -> (ProgramCode, ProbeDesc, Attach) {
    let mut a = Asm::default();
    a.i(Insn::call(helper::GET_CURRENT_PID_TGID))
        .i(Insn::mov64_reg(Reg::R6, Reg::R0))
        .i(Insn::mov64_reg(Reg::R1, Reg::R0))
        .i(Insn::alu64_imm(AluOp::Rsh, Reg::R1, 32))
        .jmp(JmpOp::Jne, Reg::R1, tgid as i32, "exit")
        .record(0, 0)
        .exit();
    let attach = Attach::Tracepoint {
        category: "syscalls".into(),
        name: "sys_enter_getppid".into(),
    };
    (
        a.finish("t_getppid", "tracepoint/getppid"),
        probe(4, "syscall", "getppid", "entry"),
        attach,
    )
}

/// A trigger program: count `agg_n[key]++` and emit a record of `epid` with payload `key`.
fn trigger_prog(name: &str, symbol: &str, key: i32, epid: i32) -> (ProgramCode, ProbeDesc, Attach) {
    let mut a = Asm::default();
    a.increment(2, Size::DW, key, "exit")
        .i(Insn::mov64_imm(Reg::R6, key))
        .record(0, epid)
        .exit();
    let p = probe(if symbol == "BEGIN" { 1 } else { 2 }, "dtrace", "", symbol);
    (
        a.finish(name, &format!("raw_tracepoint/{name}")),
        p,
        Attach::Trigger {
            symbol: symbol.into(),
        },
    )
}

#[derive(Default)]
struct Collect {
    records: Vec<Record>,
    exit_on: Option<(u32, i32)>,
    notices: Vec<String>,
}

impl RecordHandler for Collect {
    fn notice(&mut self, message: &str) {
        self.notices.push(message.to_string());
    }

    fn record(&mut self, _: &mut Session, record: Record) -> anyhow::Result<Flow> {
        let epid = record.header.epid;
        self.records.push(record);
        Ok(match self.exit_on {
            Some((e, status)) if e == epid => Flow::Exit(status),
            _ => Flow::Continue,
        })
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// (1) A tracepoint program sends one record per getppid() of this process; the run ends
/// when the `-c` target exits.
#[test]
fn runtime_tracepoint_records_arrive() {
    let _g = lock();
    let me = std::process::id();
    let s = script(vec![tracepoint_getppid(me)]);
    let mut target = Target::spawn_stopped("sleep 0.6").unwrap();
    let mut h = Collect::default();
    let outcome = rt().block_on(async {
        let fire = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for _ in 0..3 {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::getppid() };
            }
        };
        let run = tokio::time::timeout(Duration::from_secs(20), run(&s, Some(&mut target), &mut h));
        tokio::join!(run, fire).0
    });
    let outcome = outcome.expect("timed out").unwrap();
    assert_eq!(
        outcome.reason,
        StopReason::TargetExited(ExitInfo::Exited(0))
    );
    assert_eq!(h.records.len(), 3, "{:?}", h.records);
    for r in &h.records {
        assert_eq!(r.header.epid, 0);
        let v = r.actions[0].1[0].as_i64().unwrap() as u64;
        assert_eq!((v >> 32) as u32, me);
    }
}

/// SIGINT stops the run; records before it are delivered and END still fires.
#[test]
fn runtime_sigint_stops_the_run() {
    let _g = lock();
    let me = std::process::id();
    let s = script(vec![
        tracepoint_getppid(me),
        trigger_prog("t_end", "END", 1, 1),
    ]);
    let mut h = Collect::default();
    let outcome = rt().block_on(async {
        let fire = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // SAFETY: getppid and kill have no preconditions; run() handles SIGINT by now.
            unsafe {
                libc::getppid();
                libc::kill(me as libc::pid_t, libc::SIGINT);
            }
        };
        let run = tokio::time::timeout(Duration::from_secs(20), run(&s, None, &mut h));
        tokio::join!(run, fire).0
    });
    let outcome = outcome.expect("timed out").unwrap();
    assert_eq!(
        (outcome.reason, outcome.status),
        (StopReason::Signal(libc::SIGINT), 0)
    );
    let epids: Vec<u32> = h.records.iter().map(|r| r.header.epid).collect();
    assert_eq!(epids, [0, 1]);
}

/// (2) BEGIN increments a per-CPU hash aggregation; read back, merged, cleared, truncated.
#[test]
fn runtime_begin_trigger_counts() {
    let _g = lock();
    let s = script(vec![
        trigger_prog("t_begin", "BEGIN", 0, 0),
        trigger_prog("t_end", "END", 1, 1),
    ]);
    let mut session = Session::open(&s).unwrap();
    for _ in 0..3 {
        session.fire(Trigger::Begin);
    }
    session.fire(Trigger::End);
    let raw = session.agg_raw(0).unwrap();
    assert_eq!(raw.len(), 2);
    assert!(raw
        .iter()
        .all(|(_, per_cpu)| per_cpu.len() == maps::nr_possible_cpus()));
    let mut snap = session.agg_snapshot(0).unwrap();
    snap.entries.sort_by_key(|e| e.keys[0].as_i64());
    assert_eq!(
        snap.entries[0].keys,
        vec![Value::Int {
            value: 0,
            size: 8,
            signed: true
        }]
    );
    assert_eq!(snap.entries[0].value, AggValue::Scalar(3));
    assert_eq!(snap.entries[1].value, AggValue::Scalar(1));

    session.agg_trunc(0, Some(1)).unwrap();
    let snap = session.agg_snapshot(0).unwrap();
    assert_eq!(snap.entries.len(), 1);
    assert_eq!(snap.entries[0].value, AggValue::Scalar(3));
    session.agg_clear(0).unwrap();
    let snap = session.agg_snapshot(0).unwrap();
    assert_eq!(snap.entries[0].value, AggValue::Scalar(0));
    session.fire(Trigger::Begin);
    assert_eq!(
        session.agg_snapshot(0).unwrap().entries[0].value,
        AggValue::Scalar(1)
    );
    session.agg_trunc(0, None).unwrap();
    assert!(session.agg_raw(0).unwrap().is_empty());
    let stats = session.stats().unwrap();
    assert!(stats.iter().all(|c| c.iter().all(|&n| n == 0)));
}

/// BEGIN's exit() ends the run before the target is released; END still runs and its record
/// is delivered; records are decoded per clause.
#[test]
fn runtime_exit_in_begin_runs_end() {
    let _g = lock();
    let s = script(vec![
        trigger_prog("t_begin", "BEGIN", 0, 0),
        trigger_prog("t_end", "END", 1, 1),
    ]);
    let mut target = Target::spawn_stopped("true").unwrap();
    let mut h = Collect {
        exit_on: Some((0, 7)),
        ..Default::default()
    };
    let outcome = rt().block_on(run(&s, Some(&mut target), &mut h)).unwrap();
    assert_eq!((outcome.reason, outcome.status), (StopReason::Exit, 7));
    let epids: Vec<u32> = h.records.iter().map(|r| r.header.epid).collect();
    assert_eq!(epids, [0, 1]);
    assert_eq!(h.records[1].actions[0].1[0].as_i64(), Some(1));
    drop(outcome);
    drop(target);
}

/// (3) profile-99 on every CPU for ~250 ms hits.
#[test]
fn runtime_profile_fires() {
    let _g = lock();
    let mut a = Asm::default();
    a.increment(3, Size::W, 0, "exit").exit();
    let attach = Attach::Perf {
        period_ns: None,
        frequency: Some(99),
        all_cpus: true,
    };
    let s = script(vec![(
        a.finish("t_profile", "perf_event/profile"),
        probe(5, "profile", "", "profile-99"),
        attach,
    )]);
    let session = Session::open(&s).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_millis(250);
    while std::time::Instant::now() < deadline {
        std::hint::black_box(0u64.wrapping_add(1));
    }
    let hits = session.raw_map("hits").unwrap();
    let per_cpu = hits.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    let total: u64 = per_cpu
        .iter()
        .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
        .sum();
    assert!(total > 0, "no profile hits");
}

/// (4) Everything a session loads is gone after it is dropped, and nothing is left in tracefs.
#[test]
fn runtime_cleanup_unloads_everything() {
    let _g = lock();
    let before: HashSet<u32> = loaded_program_ids().into_iter().collect();
    let mut a = Asm::default();
    a.increment(3, Size::W, 0, "exit").exit();
    let attach = Attach::Perf {
        period_ns: Some(10_000_000),
        frequency: None,
        all_cpus: false,
    };
    let s = script(vec![
        tracepoint_getppid(std::process::id()),
        trigger_prog("t_begin", "BEGIN", 0, 0),
        (
            a.finish("t_tick", "perf_event/tick"),
            probe(6, "profile", "", "tick-100"),
            attach,
        ),
    ]);
    let session = Session::open(&s).unwrap();
    let ours = session.program_ids();
    assert_eq!(ours.len(), 3);
    let during: HashSet<u32> = loaded_program_ids().into_iter().collect();
    assert!(ours
        .iter()
        .all(|id| during.contains(id) && !before.contains(id)));
    drop(session);
    let after: HashSet<u32> = loaded_program_ids().into_iter().collect();
    assert!(
        ours.iter().all(|id| !after.contains(id)),
        "programs left loaded"
    );
    // Other processes may load or unload programs meanwhile: compare counts only when they
    // did not.
    if after.is_superset(&before) && after.difference(&before).next().is_none() {
        assert_eq!(after.len(), before.len());
    }
    for f in ["uprobe_events", "kprobe_events"] {
        let text = std::fs::read_to_string(format!("/sys/kernel/tracing/{f}")).unwrap_or_default();
        assert!(!text.contains("aya_"), "{f}: {text}");
    }
}

/// A verifier rejection comes back with the program name and the full log.
#[test]
fn runtime_verifier_log_is_returned() {
    let _g = lock();
    let mut a = Asm::default();
    a.i(Insn::ldx(Size::DW, Reg::R0, Reg::FP, 8))
        .i(Insn::exit());
    let p = probe(1, "dtrace", "", "BEGIN");
    let s = script(vec![(
        a.finish("t_bad", "raw_tracepoint/bad"),
        p,
        Attach::Trigger {
            symbol: "BEGIN".into(),
        },
    )]);
    match Session::open(&s) {
        Err(RuntimeError::Verifier {
            program,
            probe,
            log,
            ..
        }) => {
            assert_eq!(program, "t_bad");
            assert_eq!(probe, "dtrace:::BEGIN");
            assert!(log.contains("0: (79) r0 = *(u64 *)(r10 +8)"), "{log}");
            assert!(log.contains("invalid read from stack"), "{log}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the verifier accepted an invalid program"),
    }
}

/// Attach errors name the probe. The kprobe is on a function no kernel has, so attaching
/// fails both where kprobes exist (the VM kernels) and where they do not (this host).
#[test]
fn runtime_attach_errors_name_the_probe() {
    let _g = lock();
    let mut a = Asm::default();
    a.exit();
    let attach = Attach::Kprobe {
        function: "tracer_no_such_function".into(),
        offset: 0,
        ret: false,
    };
    let s = script(vec![(
        a.finish("t_kp", "kprobe/tracer_no_such_function"),
        probe(7, "fbt", "tracer_no_such_function", "entry"),
        attach,
    )]);
    let e = Session::open(&s).err().expect("kprobe attached?");
    let msg = e.to_string();
    assert!(
        msg.starts_with("failed to enable fbt::tracer_no_such_function:entry: "),
        "{msg}"
    );
    eprintln!("kprobe: {msg}");

    let mut a = Asm::default();
    a.exit();
    let attach = Attach::Tracepoint {
        category: "syscalls".into(),
        name: "sys_enter_nonexistent".into(),
    };
    let s = script(vec![(
        a.finish("t_tp", "tracepoint/x"),
        probe(8, "syscall", "nonexistent", "entry"),
        attach,
    )]);
    let msg = Session::open(&s).err().unwrap().to_string();
    assert!(
        msg.starts_with("failed to enable syscall::nonexistent:entry: "),
        "{msg}"
    );

    let mut a = Asm::default();
    a.exit();
    let s = script(vec![(
        a.finish("t_err", "raw_tracepoint/x"),
        probe(3, "dtrace", "", "ERROR"),
        Attach::Trigger {
            symbol: "ERROR".into(),
        },
    )]);
    let msg = Session::open(&s).err().unwrap().to_string();
    assert!(msg.contains("dtrace:::ERROR"), "{msg}");
}

/// USDT-style semaphore on a plain uprobe (our own binary): ref_ctr_offset is honoured.
#[link_section = ".data.tracer_test_sema"]
#[no_mangle]
static TRACER_TEST_SEMA: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

#[no_mangle]
#[inline(never)]
extern "C" fn tracer_test_probe_site() {
    std::hint::black_box(0x5e_u32);
    // SAFETY: empty asm keeps the function distinct and not inlined away.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
}

fn self_file_offset(addr: u64) -> u64 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (s, e) = f[0].split_once('-').unwrap();
        let (s, e) = (
            u64::from_str_radix(s, 16).unwrap(),
            u64::from_str_radix(e, 16).unwrap(),
        );
        if (s..e).contains(&addr) {
            return addr - s + u64::from_str_radix(f[2], 16).unwrap();
        }
    }
    panic!("{addr:#x} not mapped")
}

#[test]
fn runtime_uprobe_with_semaphore() {
    let _g = lock();
    let sema = &TRACER_TEST_SEMA as *const _ as u64;
    let mut a = Asm::default();
    a.increment(3, Size::W, 0, "exit").exit();
    let attach = Attach::Uprobe {
        path: "/proc/self/exe".into(),
        offset: self_file_offset(tracer_test_probe_site as *const () as u64),
        ret: false,
        pid: Some(std::process::id()),
        ref_ctr_offset: Some(self_file_offset(sema)),
    };
    let s = script(vec![(
        a.finish("t_usdt", "uprobe/usdt"),
        probe(9, "usdt", "site", "probe"),
        attach,
    )]);
    assert_eq!(
        TRACER_TEST_SEMA.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let session = Session::open(&s).unwrap();
    assert_eq!(
        TRACER_TEST_SEMA.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    tracer_test_probe_site();
    tracer_test_probe_site();
    let per_cpu = session
        .raw_map("hits")
        .unwrap()
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let total: u64 = per_cpu
        .iter()
        .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
        .sum();
    assert_eq!(total, 2);
    drop(session);
    assert_eq!(
        TRACER_TEST_SEMA.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}
