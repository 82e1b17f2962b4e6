//! The per-CPU scratch entries of the preemption guard, on the real kernel: a compiled
//! script whose firings find scratch entries already taken (as when firings are preempted
//! on that CPU) runs in a free one, and is dropped and counted only when all are taken.
//! Taken entries are simulated by setting the busy flags from userspace: a real preempted
//! firing cannot be arranged on demand.

use super::lock;
use crate::maps::{nr_possible_cpus, RawMap};
use crate::Session;
use tracer_common::script::{Stat, SCRATCH_LEVELS};
use tracer_common::{AggValue, MapNames, Value};

/// Calls of getsid(2) by this thread in each phase: a syscall nothing else on the machine
/// makes often, so that little but this test's firings reach the programs.
const CALLS: u64 = 40;

fn getsid_calls() {
    for _ in 0..CALLS {
        // SAFETY: getsid(0) only reads the caller's session id.
        unsafe { libc::syscall(libc::SYS_getsid, 0) };
    }
}

fn set_busy(busy: &RawMap<'_>, flags: [u64; SCRATCH_LEVELS as usize]) {
    let value: Vec<u8> = flags.iter().flat_map(|f| f.to_ne_bytes()).collect();
    busy.update(&0u32.to_ne_bytes(), &vec![value; nr_possible_cpus()])
        .expect("set the busy flags");
}

fn preempt_drops(session: &Session) -> u64 {
    let stats = session.stats().expect("read stats");
    stats
        .iter()
        .map(|cpu| cpu[Stat::PreemptDrops as usize])
        .sum()
}

/// This thread's count in `@n[execname, tid]`, 0 when absent.
fn own_count(session: &mut Session, tid: i64) -> i64 {
    let snap = session.agg_snapshot(0).expect("read @n");
    snap.entries
        .iter()
        .find(|e| e.keys.get(1).and_then(Value::as_i64) == Some(tid))
        .map(|e| match e.value {
            AggValue::Scalar(n) => n,
            ref v => panic!("count() gave {v:?}"),
        })
        .unwrap_or(0)
}

fn entry(map: &RawMap<'_>, key: u32) -> Vec<Vec<u8>> {
    map.lookup(&key.to_ne_bytes())
        .expect("read the map")
        .expect("array entry present")
}

#[test]
fn runtime_preempted_scratch_entries_are_skipped_not_dropped() {
    let _g = lock();
    if !crate::host::kernel_at_least(5, 12) {
        eprintln!("skipped: kernels before 5.12 have no preemption guard (one scratch entry)");
        return;
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as i64;
    let comm = std::fs::read_to_string("/proc/thread-self/comm").expect("own comm");
    let comm = comm.trim_end().as_bytes();
    let clause = format!("syscall::getsid:entry /tid == {tid}/ {{ @n[execname, tid] = count(); }}");
    let request = crate::prepare::Request {
        sources: vec![crate::prepare::Source {
            name: clause.clone(),
            text: clause,
            from_file: false,
        }],
        options: Default::default(),
        args: Vec::new(),
        target: None,
        zero_ok: false,
        scope: crate::scope::ScopeArg::Auto,
    };
    let prepared = crate::prepare::prepare(request, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let mut session = Session::open(&prepared.compiled.script).expect("load and attach");
    {
        let busy = session
            .raw_map(MapNames::BUSY)
            .expect("the guard's busy map");
        assert_eq!(busy.value_size, 8 * SCRATCH_LEVELS as usize);
        // Every entry taken on every CPU before anything runs: every firing is dropped,
        // counted, and touches no scratch.
        set_busy(&busy, [1; SCRATCH_LEVELS as usize]);
    }
    session.start_probes().expect("start");
    getsid_calls();
    assert_eq!(
        own_count(&mut session, tid),
        0,
        "a firing ran with no free entry"
    );
    let dropped = preempt_drops(&session);
    assert!(
        dropped >= CALLS,
        "{dropped} firings counted as dropped, expected at least {CALLS}"
    );

    // Entry 0 taken (a preempted firing holds it): the firings run in entry 1, every one.
    let mut taken = [0; SCRATCH_LEVELS as usize];
    taken[0] = 1;
    set_busy(&session.raw_map(MapNames::BUSY).unwrap(), taken);
    getsid_calls();
    assert_eq!(own_count(&mut session, tid), CALLS as i64);
    assert_eq!(
        preempt_drops(&session),
        dropped,
        "firings dropped with entries free"
    );

    // Detached, no firing is in flight: each released its entry, and the scratch shows
    // which entry they used (`execname`, the aggregation key, is built in scratch).
    session.stop_probes();
    let busy = session.raw_map(MapNames::BUSY).unwrap();
    for (cpu, flags) in entry(&busy, 0).iter().enumerate() {
        let flags: Vec<u64> = flags
            .chunks(8)
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(flags, taken, "busy flags on CPU {cpu} after the run");
    }
    let scratch = session.raw_map(MapNames::SCRATCH).unwrap();
    assert!(
        entry(&scratch, 0).iter().flatten().all(|&b| b == 0),
        "scratch entry 0 was written while taken"
    );
    assert!(
        entry(&scratch, 1)
            .iter()
            .any(|v| v.windows(comm.len()).any(|w| w == comm)),
        "no CPU's scratch entry 1 holds this thread's name ({:?})",
        String::from_utf8_lossy(comm)
    );
}
