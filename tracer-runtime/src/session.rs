//! Loading the compiled object, attaching every program, and access to its maps.

use super::decode::Decoder;
use super::maps::{self, Entries, RawMap};
use super::ringbuf::EventStream;
use super::trigger::Trigger;
use aya::maps::{Map, MapData, MapType};
use aya::programs::Program;
use aya::{Ebpf, EbpfLoader};
use std::collections::HashSet;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use tracer_common::script::MapInit;
use tracer_common::script::NSTATS;
use tracer_common::{AggSnapshot, Attach, CompiledScript, MapNames, ProgramDesc};

/// Why a session could not be set up. `Display` gives the one-line message without the
/// `tracer: ` prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeError {
    /// The object (its maps) could not be loaded.
    Object { reason: String },
    /// The verifier rejected a program: `log` is its full log, whose instruction numbers are
    /// those of the program named `program` (for mapping back to D source lines).
    Verifier {
        program: String,
        probe: String,
        reason: String,
        log: String,
    },
    /// A program could not be attached (or loaded for a reason other than the verifier).
    Attach { probe: String, reason: String },
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Object { reason } => {
                write!(f, "failed to load the eBPF object: {reason}")
            }
            RuntimeError::Verifier { probe, reason, .. } => {
                write!(
                    f,
                    "failed to enable {probe}: the verifier rejected the program: {reason}"
                )
            }
            RuntimeError::Attach { probe, reason } => {
                write!(f, "failed to enable {probe}: {reason}")
            }
        }
    }
}

impl std::error::Error for RuntimeError {}

/// An error and its sources, joined with ": ".
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    // io::Error's " (os error N)" suffix is noise in a one-line message.
    let text = |e: &dyn std::error::Error| {
        let m = e.to_string();
        match m.rfind(" (os error ") {
            Some(i) if m.ends_with(')') => m[..i].to_string(),
            _ => m,
        }
    };
    let mut s = text(e);
    let mut src = e.source();
    while let Some(e) = src {
        let m = text(e);
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = e.source();
    }
    s
}

/// The loaded, attached script.
pub struct Session {
    pub(super) ebpf: Ebpf,
    /// The script without its ELF.
    pub(super) script: CompiledScript,
    pub(super) decoder: Decoder,
    /// Uprobes with a semaphore, attached by hand: (program name, perf event fd).
    pub(super) manual: Vec<(String, OwnedFd)>,
    /// Programs tracer loaded itself (kprobe_multi, uprobe_multi), by program name.
    pub(super) own_programs: Vec<(String, OwnedFd)>,
    /// Firings the kernel skipped in programs already unloaded.
    skipped_before: u64,
    /// Kernel BTF as aya parses it, for fentry/fexit loads (read on first use).
    pub(super) kernel_btf: Option<aya::Btf>,
    /// Kernel-function probes that could not attach and were skipped, with the reason.
    pub skipped: Vec<String>,
    /// Programs attached to the END trigger (kept by [`Session::stop_probes`]).
    pub(super) end_programs: HashSet<String>,
    /// BEGIN/END programs, run with BPF_PROG_TEST_RUN by [`Session::fire`].
    pub(super) triggers: Vec<(Trigger, OwnedFd)>,
    /// The links of programs attached at many uprobe sites, by program name, so that
    /// unloading detaches them in parallel (see [`Session::unload_where`]).
    pub(super) uprobe_links:
        std::collections::HashMap<String, Vec<aya::programs::uprobe::UProbeLinkId>>,
    /// The ring buffer's descriptor once [`Session::take_events`] took the map.
    pub(super) events_fd: Option<OwnedFd>,
}

/// Mount tracefs at /sys/kernel/tracing when no tracefs is visible (root only). Done before
/// aya first looks for it: aya caches the answer.
fn ensure_tracefs() {
    let populated = |p: &str| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some());
    if populated("/sys/kernel/tracing") || populated("/sys/kernel/debug/tracing") {
        return;
    }
    // SAFETY: geteuid has no preconditions; mount gets valid NUL-terminated strings.
    unsafe {
        if libc::geteuid() == 0 {
            libc::mount(
                c"nodev".as_ptr(),
                c"/sys/kernel/tracing".as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            );
        }
    }
}

fn map_data(map: &Map) -> Option<&MapData> {
    Some(match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::StackTraceMap(d)
        | Map::CgroupArray(d)
        | Map::RingBuf(d) => d,
        _ => return None,
    })
}

fn is_kernel_function(a: &Attach) -> bool {
    matches!(
        a,
        Attach::Kprobe { .. } | Attach::Fentry { .. } | Attach::KprobeMulti { .. }
    )
}

fn is_plain_uprobe(a: &Attach) -> bool {
    matches!(
        a,
        Attach::Uprobe {
            ref_ctr_offset: None,
            ..
        }
    )
}

fn is_self_loaded(a: &Attach) -> bool {
    matches!(a, Attach::KprobeMulti { .. })
}

impl Session {
    /// Load the object (map sizes from `script.map_sizes`) and load and attach every program.
    pub fn open(script: &CompiledScript) -> Result<Session, RuntimeError> {
        if script
            .programs
            .iter()
            .any(|p| matches!(p.attach, Attach::Tracepoint { .. }))
        {
            ensure_tracefs();
        }
        let mut loader = EbpfLoader::new();
        // Generated objects carry no BTF and no CO-RE relocations.
        loader.btf(None);
        for (name, n) in &script.map_sizes {
            loader.map_max_entries(name, *n);
        }
        let ebpf = loader
            .load(&script.elf)
            .map_err(|e| RuntimeError::Object { reason: chain(&e) })?;
        let mut session = Session {
            ebpf,
            script: CompiledScript {
                elf: Vec::new(),
                ..script.clone()
            },
            decoder: Decoder::new(),
            manual: Vec::new(),
            own_programs: Vec::new(),
            skipped_before: 0,
            kernel_btf: None,
            skipped: Vec::new(),
            end_programs: HashSet::new(),
            triggers: Vec::new(),
            uprobe_links: Default::default(),
            events_fd: None,
        };
        for init in &script.map_init {
            session.init_map(init).map_err(|e| RuntimeError::Object {
                reason: format!("initializing map `{}`: {e:#}", init.map),
            })?;
        }
        let mut loaded = HashSet::new();
        if script.programs.len() > 200 {
            // Each uprobe site holds a perf event and a link descriptor.
            super::uprobe_multi::raise_nofile();
        }
        // Kernel functions a glob matched may refuse probes (notrace, inlined away, on the
        // kprobe blocklist): those are skipped and counted, unless none attaches at all.
        let mut kernel_fn_ok = 0;
        let mut kernel_fn_failed = Vec::new();
        let mut multi_done: HashSet<&str> = HashSet::new();
        for desc in &script.programs {
            // Matched nothing (-Z): nothing to attach, maybe later (see `pending`).
            if matches!(desc.attach, Attach::Pending { .. }) {
                continue;
            }
            // A program that stands for many probes tells them apart by a site index.
            let shared = desc.shared();
            // A program at many uprobe sites: one uprobe_multi link for all of them.
            if shared && is_plain_uprobe(&desc.attach) && super::uprobe_multi::available() {
                if multi_done.insert(desc.name.as_str()) {
                    let sites: Vec<&ProgramDesc> = script
                        .programs
                        .iter()
                        .filter(|p| p.name == desc.name)
                        .collect();
                    session.attach_uprobe_multi(&sites, &script.elf)?;
                }
                continue;
            }
            let attached = if is_self_loaded(&desc.attach) {
                session.attach_multi(desc, &script.elf)
            } else {
                session.attach(desc, &mut loaded, shared)
            };
            match attached {
                Ok(()) if is_kernel_function(&desc.attach) => kernel_fn_ok += 1,
                Ok(()) => {}
                // fentry also refuses some functions at load (unsupported prototypes).
                Err(e @ (RuntimeError::Attach { .. } | RuntimeError::Verifier { .. }))
                    if is_kernel_function(&desc.attach) =>
                {
                    kernel_fn_failed.push(e)
                }
                Err(e) => return Err(e),
            }
        }
        if kernel_fn_ok == 0 && !kernel_fn_failed.is_empty() {
            return Err(kernel_fn_failed.remove(0));
        }
        session.skipped = kernel_fn_failed.iter().map(|e| e.to_string()).collect();
        Ok(session)
    }

    /// Write `init`'s entries (a per-CPU map gets the value on every CPU).
    fn init_map(&self, init: &MapInit) -> anyhow::Result<()> {
        let map = self.raw_map(&init.map)?;
        let ncpus = if map.per_cpu {
            maps::nr_possible_cpus()
        } else {
            1
        };
        for (key, value) in &init.entries {
            map.update(key, &vec![value.clone(); ncpus])?;
        }
        Ok(())
    }

    /// The script (without its ELF).
    pub fn script(&self) -> &CompiledScript {
        &self.script
    }

    pub fn decoder(&mut self) -> &mut Decoder {
        &mut self.decoder
    }

    /// Decode one ring-buffer record of this script.
    pub fn decode(&mut self, bytes: &[u8]) -> anyhow::Result<super::decode::Event> {
        self.decoder.event(&self.script, bytes)
    }

    /// Fire BEGIN or END: runs their programs synchronously (a no-op if there are none).
    pub fn fire(&self, which: Trigger) {
        for (t, fd) in &self.triggers {
            if *t == which {
                // BEGIN/END return nothing the runtime uses; a failed run shows as no output.
                let _ = test_run(fd.as_raw_fd());
            }
        }
    }

    /// Detach and unload every program except END's, so nothing but END fires any more.
    pub fn stop_probes(&mut self) {
        let keep = self.end_programs.clone();
        let (kept, gone) = std::mem::take(&mut self.manual)
            .into_iter()
            .partition(|(name, _)| keep.contains(name));
        self.manual = kept;
        close_in_parallel(gone);
        self.skipped_before += self.own_skipped(|name| !keep.contains(name));
        self.own_programs.retain(|(name, _)| keep.contains(name));
        self.unload_where(|name| !keep.contains(name));
    }

    /// After BEGIN: let every other probe fire (they return at once until then, so that
    /// nothing fires before BEGIN, as DTrace promises). Left alone if BEGIN called exit().
    pub fn start_probes(&self) -> anyhow::Result<()> {
        use tracer_common::script::{RUN_ACTIVE, RUN_BEFORE_BEGIN};
        // An object without the run state (hand-made ones in tests) has nothing to start.
        let Ok(globals) = self.raw_map(MapNames::GLOBALS) else {
            return Ok(());
        };
        let key = 0u32.to_ne_bytes();
        let Some(values) = globals.lookup(&key)? else {
            return Ok(());
        };
        let mut value = values.into_iter().next().unwrap_or_default();
        if value.len() >= 8 && u64::from_ne_bytes(value[..8].try_into()?) == RUN_BEFORE_BEGIN {
            value[..8].copy_from_slice(&RUN_ACTIVE.to_ne_bytes());
            globals.update(&key, &[value])?;
        }
        Ok(())
    }

    /// Detach and unload every program: the end of the session.
    pub fn unload_all(&mut self) {
        close_in_parallel(std::mem::take(&mut self.manual));
        self.own_programs.clear();
        self.triggers.clear();
        self.unload_where(|_| true);
    }

    /// Unload the chosen programs, each on its own thread: detaching a probe waits for an
    /// RCU grace period in the kernel, and concurrent detaches share one instead of paying
    /// one each (20 tracepoints: ~1 s one after the other).
    fn unload_where(&mut self, chosen: impl Fn(&str) -> bool) {
        self.skipped_before += self
            .ebpf
            .programs()
            .filter(|(name, _)| chosen(name))
            .map(|(_, p)| program_skipped(p))
            .sum::<u64>();
        let links = &mut self.uprobe_links;
        std::thread::scope(|s| {
            for (name, prog) in self.ebpf.programs_mut() {
                if !chosen(name) {
                    continue;
                }
                // A program at thousands of uprobe sites: each detach waits for the kernel
                // (~0.1 s), so its links go in parallel too, a few per thread.
                if let (Program::UProbe(p), Some(ids)) = (&mut *prog, links.remove(name)) {
                    let taken: Vec<_> = ids
                        .into_iter()
                        .filter_map(|id| p.take_link(id).ok())
                        .collect();
                    let per = taken.len().div_ceil(256).max(1);
                    let mut taken = taken.into_iter().peekable();
                    while taken.peek().is_some() {
                        let chunk: Vec<_> = taken.by_ref().take(per).collect();
                        s.spawn(move || drop(chunk));
                    }
                }
                s.spawn(move || {
                    let _ = match prog {
                        Program::KProbe(p) => p.unload(),
                        Program::UProbe(p) => p.unload(),
                        Program::TracePoint(p) => p.unload(),
                        Program::RawTracePoint(p) => p.unload(),
                        Program::PerfEvent(p) => p.unload(),
                        Program::FEntry(p) => p.unload(),
                        Program::FExit(p) => p.unload(),
                        _ => Ok(()),
                    };
                });
            }
        });
    }

    /// Take the `events` ring buffer as an async stream (once; needs a tokio runtime).
    pub fn take_events(&mut self) -> anyhow::Result<EventStream> {
        let map = self
            .ebpf
            .take_map(MapNames::EVENTS)
            .ok_or_else(|| anyhow::anyhow!("the object has no `{}` map", MapNames::EVENTS))?;
        // Programs loaded later (see `pending`) write to it too.
        self.events_fd = map_data(&map).and_then(|d| d.fd().as_fd().try_clone_to_owned().ok());
        EventStream::new(map)
    }

    /// Raw access to a map by name.
    pub fn raw_map(&self, name: &str) -> anyhow::Result<RawMap<'_>> {
        let map = self
            .ebpf
            .map(name)
            .ok_or_else(|| anyhow::anyhow!("no map `{name}`"))?;
        let data =
            map_data(map).ok_or_else(|| anyhow::anyhow!("map `{name}` has an unsupported type"))?;
        let info = data.info()?;
        let per_cpu = matches!(
            info.map_type()?,
            MapType::PerCpuArray | MapType::PerCpuHash | MapType::LruPerCpuHash
        );
        Ok(RawMap {
            fd: data.fd().as_fd(),
            key_size: info.key_size() as usize,
            value_size: info.value_size() as usize,
            per_cpu,
        })
    }

    fn agg_map(&self, agg: u32) -> anyhow::Result<RawMap<'_>> {
        let desc = self
            .script
            .aggs
            .get(agg as usize)
            .ok_or_else(|| anyhow::anyhow!("no aggregation #{agg}"))?;
        self.raw_map(&desc.map)
    }

    /// Every key of aggregation `agg` with its per-CPU accumulators.
    pub fn agg_raw(&self, agg: u32) -> anyhow::Result<Entries> {
        Ok(self.agg_map(agg)?.read_all()?)
    }

    /// Aggregation `agg`, merged across CPUs, keys decoded (unsorted, `normal` 1).
    pub fn agg_snapshot(&mut self, agg: u32) -> anyhow::Result<AggSnapshot> {
        let raw = self.agg_raw(agg)?;
        let desc = &self.script.aggs[agg as usize];
        Ok(self.decoder.snapshot(desc, &raw))
    }

    /// `clear(@a)`: zero every value, keep the keys.
    pub fn agg_clear(&self, agg: u32) -> anyhow::Result<()> {
        Ok(self.agg_map(agg)?.clear()?)
    }

    /// `trunc(@a)` (keep = None or 0: delete everything) or `trunc(@a, n)`: keep the `n`
    /// largest values (n > 0) or the `-n` smallest (n < 0).
    pub fn agg_trunc(&mut self, agg: u32, keep: Option<i64>) -> anyhow::Result<()> {
        let map = self.agg_map(agg)?;
        let raw = map.read_all()?;
        let func = &self.script.aggs[agg as usize].func;
        // Ranked as the output sorts by value (a histogram by its weight, not its count), so
        // trunc keeps exactly the entries printa would show first.
        let mut scored: Vec<(tracer_common::AggValue, Vec<u8>)> = raw
            .into_iter()
            .map(|(k, v)| {
                (
                    tracer_common::AggValue::merge(func, v.iter().map(|b| b.as_slice())),
                    k,
                )
            })
            .collect();
        let n = keep.unwrap_or(0);
        let by_value = |a: &(tracer_common::AggValue, Vec<u8>),
                        b: &(tracer_common::AggValue, Vec<u8>)| {
            tracer_output::aggregate::cmp_values(func, &a.0, &b.0)
        };
        if n >= 0 {
            scored.sort_by(|a, b| by_value(b, a));
        } else {
            scored.sort_by(by_value);
        }
        let doomed: Vec<Vec<u8>> = scored
            .into_iter()
            .skip(n.unsigned_abs() as usize)
            .map(|(_, k)| k)
            .collect();
        Ok(map.delete(&doomed)?)
    }

    /// The `stats` counters as `[cpu][stat]` (all zero if the object has no `stats` map).
    pub fn stats(&self) -> anyhow::Result<Vec<[u64; NSTATS as usize]>> {
        if self.ebpf.map(MapNames::STATS).is_none() {
            return Ok(vec![[0; NSTATS as usize]; maps::nr_possible_cpus()]);
        }
        Ok(maps::read_stats(&self.raw_map(MapNames::STATS)?)?)
    }

    /// Firings of this session's programs that the kernel skipped (see `proginfo`), since
    /// the start, unloaded programs included.
    pub fn kernel_skipped(&self) -> u64 {
        let aya: u64 = self.ebpf.programs().map(|(_, p)| program_skipped(p)).sum();
        self.skipped_before + aya + self.own_skipped(|_| true)
    }

    fn own_skipped(&self, chosen: impl Fn(&str) -> bool) -> u64 {
        self.own_programs
            .iter()
            .filter(|(name, _)| chosen(name))
            .map(|(_, fd)| super::proginfo::recursion_misses(fd.as_raw_fd()))
            .sum()
    }

    /// Kernel ids of the loaded programs of this session.
    pub fn program_ids(&self) -> Vec<u32> {
        self.ebpf
            .programs()
            .filter_map(|(_, p)| p.info().ok())
            .map(|i| i.id())
            .collect()
    }
}

/// Close the links of probes attached by hand, a few per thread: each close of a uprobe
/// waits for an RCU grace period in the kernel, and concurrent closes share one (a Java
/// program's 240 late hotspot_jni probes took 13 s one after the other).
fn close_in_parallel(links: Vec<(String, OwnedFd)>) {
    if links.len() < 4 {
        return;
    }
    let per = links.len().div_ceil(64);
    let mut links = links.into_iter().peekable();
    std::thread::scope(|s| {
        while links.peek().is_some() {
            let chunk: Vec<_> = links.by_ref().take(per).collect();
            s.spawn(move || drop(chunk));
        }
    });
}

fn program_skipped(p: &Program) -> u64 {
    p.fd().map_or(0, |fd| {
        super::proginfo::recursion_misses(fd.as_fd().as_raw_fd())
    })
}

/// Run a raw_tracepoint program once on this thread (BPF_PROG_TEST_RUN); its return value.
pub(crate) fn test_run(prog_fd: std::os::fd::RawFd) -> std::io::Result<u32> {
    // union bpf_attr.test: prog_fd, retval, data_size_in, data_size_out, data_in, data_out,
    // repeat, duration, ctx_size_in, ctx_size_out, ctx_in, ctx_out, flags, cpu.
    #[repr(C)]
    #[derive(Default)]
    struct TestRun {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        _pad: u32,
    }
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    // A raw tracepoint's context is its argument array; BEGIN/END read none of it.
    let ctx = [0u64; 6];
    let mut attr = TestRun {
        prog_fd: prog_fd as u32,
        ctx_size_in: std::mem::size_of_val(&ctx) as u32,
        ctx_in: ctx.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid bpf_attr prefix for BPF_PROG_TEST_RUN, alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRun,
            std::mem::size_of::<TestRun>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(attr.retval)
}
