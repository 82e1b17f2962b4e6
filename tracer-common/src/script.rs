//! What the compiler hands to the runtime: the ELF, where each program attaches, and the
//! descriptions needed to decode records and aggregations.

use crate::agg::AggDesc;
use crate::record::ClauseDesc;
use serde::{Deserialize, Serialize};

/// Well-known map names in every generated object.
pub struct MapNames;

impl MapNames {
    /// BPF_MAP_TYPE_RINGBUF carrying clause records; sized from `bufsize`.
    pub const EVENTS: &'static str = "events";
    /// PERCPU_ARRAY of u64 counters indexed by [`Stat`].
    pub const STATS: &'static str = "stats";
    /// PERCPU_ARRAY of per-firing scratch (records, strings, keys, `this->`): one large
    /// entry, or [`SCRATCH_LEVELS`] when firings can nest on a CPU (the busy flags say
    /// which entry a firing uses).
    pub const SCRATCH: &'static str = "scratch";
    /// The same for programs that run in NMI context (profile/tick perf events), which can
    /// interrupt another program on the same CPU mid-flight.
    pub const SCRATCH_NMI: &'static str = "scratch_nmi";
    /// ARRAY, one entry: the run state and global scalar variables. A global-data section
    /// (the name starts with `.data`), so programs address its value directly, without a
    /// lookup.
    pub const GLOBALS: &'static str = ".data.globals";
    /// PERCPU_ARRAY, one entry of [`SCRATCH_LEVELS`] u64 flags: flag `i` is 1 while a
    /// firing on this CPU uses scratch entry `i` (more than one only when firings were
    /// preempted mid-way).
    pub const BUSY: &'static str = "busy";
    /// ARRAY of speculation slots, nspec + 1 entries of u64 state.
    pub const SPECS: &'static str = "specs";
    /// HASH of the sites of programs that stand for many probes (see `ProgramDesc::sites`):
    /// u32 site (an index into `CompiledScript::probes`) → u32 probe id, u32 return offset
    /// (arg0 of a pid return-instruction site, else 0), then the function name (`strsize`
    /// bytes). Backs `id` and `probefunc`; filled through `map_init`.
    pub const SITES: &'static str = "sites";
    /// ARRAY for raw_syscalls programs: u32 key `base + syscall number` → u32 site + 1 (0:
    /// no probe of this program), where `base` is the program's block of the table's length.
    pub const SYSCALL_SITES: &'static str = "syscall_sites";
}

/// Scratch entries per CPU on kernels that can preempt a probe program mid-firing: how many
/// firings can be in flight on one CPU at once before a further one is dropped (and counted
/// as `Stat::PreemptDrops`).
pub const SCRATCH_LEVELS: u32 = 4;

/// The run state, a u64 at offset 0 of the `globals` value (see `tracer-lang`'s lowering):
/// the runtime moves it from BEFORE_BEGIN to ACTIVE once BEGIN has run; `exit()` sets EXITING.
pub const RUN_BEFORE_BEGIN: u64 = 0;
pub const RUN_ACTIVE: u64 = 1;
pub const RUN_EXITING: u64 = 2;

/// Indexes into the `stats` map. The runtime reports every non-zero counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stat {
    /// A record did not fit in the ring buffer: `N drops on CPU k`.
    Drops = 0,
    /// A dynamic (associative or thread-local) variable could not be stored.
    DynDrops = 1,
    /// An aggregation key could not be stored.
    AggDrops = 2,
    /// `speculation()` found no free buffer.
    SpecUnavail = 3,
    /// A speculative record was dropped.
    SpecDrops = 4,
    /// Errors inside ERROR clauses.
    ErrorDrops = 5,
    /// A probe fired on a CPU while `SCRATCH_LEVELS` firings of the script's programs were
    /// preempted there in the middle of theirs: every scratch entry was in use, so the
    /// firing was dropped.
    PreemptDrops = 6,
}

pub const NSTATS: u32 = 7;

/// A probe as DTrace names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeDesc {
    /// DTrace probe ID (BEGIN=1, END=2, ERROR=3, then in order).
    pub id: u32,
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
}

impl ProbeDesc {
    /// `provider:module:function:name`.
    pub fn full_name(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.provider, self.module, self.function, self.name
        )
    }
}

/// How a program attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attach {
    /// BEGIN/END/ERROR: a uprobe on one of tracer's own trigger functions, fired by calling it.
    Trigger {
        symbol: String,
    },
    Tracepoint {
        category: String,
        name: String,
    },
    RawTracepoint {
        name: String,
    },
    /// profile-N (every CPU) or tick-N (one CPU), a CPU-clock perf event.
    Perf {
        period_ns: Option<u64>,
        frequency: Option<u64>,
        all_cpus: bool,
    },
    Kprobe {
        function: String,
        offset: u64,
        ret: bool,
    },
    /// One kprobe_multi link over many kernel functions (5.18+), for globs: function `i`
    /// gets attach cookie `ProgramDesc::sites[i]`.
    KprobeMulti {
        functions: Vec<String>,
        ret: bool,
    },
    /// fentry/fexit on a kernel function, through a BPF trampoline (attached by BTF id).
    Fentry {
        function: String,
        ret: bool,
    },
    Uprobe {
        path: String,
        offset: u64,
        ret: bool,
        pid: Option<u32>,
        ref_ctr_offset: Option<u64>,
    },
    /// A description that matched nothing under `-Z`: never attached. Its clauses are still
    /// compiled, so what they declare (aggregations) exists, and a pid/USDT description of the
    /// target is matched again when the target maps a library (see the runtime's `pending`).
    Pending {
        description: String,
    },
}

/// One eBPF program in the object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramDesc {
    /// Symbol name of the program in the ELF.
    pub name: String,
    /// Index into `CompiledScript::probes`.
    pub probe: u32,
    pub attach: Attach,
    /// For a program that stands for many probes, the probes it stands for here, as indexes
    /// into `CompiledScript::probes` (its *sites*); empty for a program of one probe. The
    /// program tells its sites apart by a site index in the kernel (the attach cookie for
    /// kprobe_multi and uprobes, the `syscall_sites` map for raw_syscalls), looks names and
    /// IDs up in the `sites` map, and writes site + 1 into the record header. How the
    /// compiler decides to share is `tracer_lang::probes::Sharing`.
    ///
    /// - raw_syscalls (`syscall:::entry`): every syscall probe it stands for.
    /// - kprobe_multi: `sites[i]` is the probe of `functions[i]` (and its cookie).
    /// - uprobes sharing a program (several `ProgramDesc`s with the same name, one per
    ///   site): `[probe]`, the cookie of this site.
    #[serde(default)]
    pub sites: Vec<u32>,
}

impl ProgramDesc {
    /// True when the program stands for many probes (see `sites`).
    pub fn shared(&self) -> bool {
        !self.sites.is_empty()
    }
}

/// Options that reach the runtime (`-x`, `#pragma D option`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub quiet: bool,
    pub bufsize: u64,
    pub aggsize: u64,
    pub strsize: u32,
    pub dynvarsize: u64,
    pub nspec: u32,
    pub specsize: u64,
    pub switchrate_ns: u64,
    pub aggrate_ns: u64,
    pub aggsortkey: bool,
    pub aggsortrev: bool,
    pub aggsortpos: u32,
    pub aggsortkeypos: u32,
    pub destructive: bool,
    pub stackframes: u32,
    pub ustackframes: u32,
    pub flowindent: bool,
    /// How fbt probes attach: "auto" (fentry where the kernel allows it, else kprobes),
    /// "kprobe" or "fentry".
    pub fbtmethod: String,
    /// How pid return probes attach: "auto" (a uprobe on every return instruction for Go,
    /// whose stack walker a uretprobe's rewritten return address kills; a uretprobe
    /// otherwise), "ret" (return instructions for any binary) or "uretprobe".
    pub pidreturn: String,
    /// `zdefs` (dtrace -Z): a description that matches no probe is allowed.
    pub zdefs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quiet: false,
            bufsize: 4 << 20,
            aggsize: 4 << 20,
            strsize: 256,
            dynvarsize: 1 << 20,
            nspec: 1,
            specsize: 4 << 20,
            switchrate_ns: 1_000_000_000,
            aggrate_ns: 1_000_000_000,
            aggsortkey: false,
            aggsortrev: false,
            aggsortpos: 0,
            aggsortkeypos: 0,
            destructive: false,
            stackframes: 20,
            ustackframes: 100,
            flowindent: false,
            fbtmethod: "auto".into(),
            pidreturn: "auto".into(),
            zdefs: false,
        }
    }
}

/// The compiler's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledScript {
    /// The ELF object that aya loads.
    pub elf: Vec<u8>,
    pub programs: Vec<ProgramDesc>,
    /// Every probe enabled by the script: those clauses name, in ID order, then the sites
    /// of programs that stand for many (see `ProgramDesc::sites`), then probes found late.
    pub probes: Vec<ProbeDesc>,
    /// Indexed by `epid`.
    pub clauses: Vec<ClauseDesc>,
    pub aggs: Vec<AggDesc>,
    pub options: Options,
    /// Map sizes the runtime sets at load time (name, max_entries).
    pub map_sizes: Vec<(String, u32)>,
    /// Entries the runtime writes into maps after loading and before attaching (for example
    /// the syscall-name table behind `probefunc` on `syscall:::entry`).
    pub map_init: Vec<MapInit>,
}

/// Initial contents of one map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapInit {
    pub map: String,
    /// (key bytes, value bytes)
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}
