//! How the compiler learns what a probe description matches and how each probe's arguments
//! are read. `tracer-cli` implements [`ProbeResolver`] with one module per provider.

use crate::types::Type;
use tracer_common::{Attach, ProbeDesc};

/// Where `arg0..argN`, `args[]` and `errno` come from in a probe's context.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgSource {
    /// No arguments (BEGIN/END, profile without registers).
    None,
    /// A tracepoint with typed fields at fixed offsets of its context.
    Tracepoint { fields: Vec<TpField> },
    /// syscalls:sys_enter_*: args at ctx+16 + 8·i, typed from the tracepoint format.
    SyscallEntry { args: Vec<Type> },
    /// syscalls:sys_exit_*: the return value at ctx+16 (arg0 = arg1 = ret, errno).
    SyscallReturn,
    /// The raw_syscalls:sys_enter tracepoint: syscall number at ctx+8, args at ctx+16 + 8·i.
    RawSyscallEntry,
    /// The raw_syscalls:sys_exit tracepoint: number at ctx+8, return value at ctx+16.
    RawSyscallReturn,
    /// perf_event (profile/tick): arg0 = kernel pc, arg1 = user pc, from the saved registers.
    Profile,
    /// kprobe/uprobe: function arguments from pt_regs; `ret` reads the return register.
    PtRegs { ret: bool },
    /// A uprobe whose arguments are where another calling convention than the platform's C
    /// one puts them (Go's register ABI, Go assembly's stack words), each read as a USDT
    /// argument is. A probe on a return instruction (or a tail jump) has `ret_offset`: arg0
    /// is that instruction's offset in its function, as DTrace's pid return probes give it,
    /// and `args[1..]` are the results.
    Regs {
        args: Vec<UsdtArg>,
        ret_offset: Option<u32>,
    },
    /// fbt on a kernel function BTF describes: `args[i]` typed from its signature. With
    /// `fentry` the context is fentry/fexit's array of u64 arguments (the return value
    /// follows them), otherwise kprobe/kretprobe's pt_regs.
    Fbt {
        params: Vec<(String, Type)>,
        ret_type: Type,
        ret: bool,
        fentry: bool,
    },
    /// dtrace:::ERROR, run inline where a fault happened: arg1 = EPID, arg2 = action,
    /// arg4 = fault code, arg5 = address, from the fault record in scratch.
    Error,
    /// A USDT (stapsdt) site: each argument where the site's note says it is. One site per
    /// program, since copies of one probe (inlined twice) keep their arguments in different places.
    Usdt { args: Vec<UsdtArg> },
    /// A stable provider (proc, sched, io) built on a tracepoint: each argument is a D
    /// expression over the underlying probe's own arguments (`base`), so the provider can
    /// give DTrace's arguments whatever the tracepoint calls them.
    Stable(Box<StableArgs>),
}

/// How a stable probe's arguments, members and thread context are computed (see
/// [`ArgSource::Stable`]). Every expression is D source read against `base`.
#[derive(Debug, Clone, PartialEq)]
pub struct StableArgs {
    /// The underlying probe's arguments (tracepoint fields, or a raw tracepoint's typed args).
    pub base: ArgSource,
    /// `args[i]`, with the name `args->name` and `-lv` use, and the type `-lv` shows.
    pub args: Vec<StableArg>,
    /// `args[i]->member` for DTrace's structures we cannot build (psinfo_t, bufinfo_t...):
    /// (i, member, expression).
    pub members: Vec<(u32, String, String)>,
    /// Builtins (`pid`, `tid`, `execname`, `curthread`...) that name another thread than the
    /// one the tracepoint fires in: sched:::on-cpu runs "in" the incoming thread, as DTrace's.
    pub thread: Vec<(String, String)>,
    /// The probe fires only when this is true (proc:::exit only for a whole process).
    pub guard: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StableArg {
    pub name: String,
    /// The type as `-lv` prints it (DTrace's where ours is the same).
    pub ty: String,
    pub expr: String,
}

/// One USDT argument: `size` bytes (1, 2, 4 or 8), sign- or zero-extended to 64 bits.
#[derive(Debug, Clone, PartialEq)]
pub struct UsdtArg {
    pub size: u8,
    pub signed: bool,
    pub loc: UsdtLoc,
}

/// Where a USDT argument lives at the probe site. Register numbers are `struct pt_regs` offsets.
#[derive(Debug, Clone, PartialEq)]
pub enum UsdtLoc {
    /// An immediate (`$42`, `#5`).
    Const(i64),
    /// A register (`%edi`, `x0`).
    Reg { off: i16 },
    /// User memory at `base + index * scale + disp` (`-8(%rbp)`, `(%rax,%rdx,8)`, `[sp, 12]`).
    /// `sym(%rip)` is based on the probe's own ip, with `disp` = symbol - probe address.
    Mem {
        base: Option<i16>,
        index: Option<(i16, u8)>,
        disp: i64,
    },
    /// A spec tracer cannot decode: reading this argument is a compile error with this reason.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TpField {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    pub ty: Type,
    /// A `__data_loc` field: a u32 whose low 16 bits locate the data inside the record.
    pub data_loc: bool,
}

/// One probe a description matched.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProbe {
    /// The id is assigned by the compiler.
    pub desc: ProbeDesc,
    pub attach: Attach,
    pub args: ArgSource,
    /// The probes this one stands for when it is one program for many (see [`Sharing`]):
    /// for raw_syscalls every syscall probe of its kind, for kprobe_multi the probe of each
    /// of its `functions`, in order. Empty for a probe that is only itself.
    pub sites: Vec<ProbeDesc>,
}

impl ResolvedProbe {
    /// True when this probe stands for many (see `sites`).
    pub fn stands_for_many(&self) -> bool {
        !self.sites.is_empty()
    }
}

/// How one program comes to stand for many probes, and who decides. This is the one place
/// the policy lives (bpftrace's `ExpansionType` plays the same role): the resolver asks
/// [`Sharing::raw_syscalls`] and [`Sharing::kprobe_multi`], the compiler asks
/// [`Sharing::uprobes`]. Whatever the kind, the program's probes are its *sites*
/// (`ProgramDesc::sites`), and in the kernel a site index (an index into
/// `CompiledScript::probes`) names the probe that fired: `id` and `probefunc` come from the
/// `sites` map at that index, and the record header's `site` word is the index + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One program per probe.
    None,
    /// `syscall:::entry` / `syscall:::return` (any function, more than one syscall): one
    /// program on the raw_syscalls tracepoint. Site index: the syscall number at ctx+8,
    /// through the `syscall_sites` array map.
    RawSyscalls,
    /// An fbt glob over at least [`Sharing::KPROBE_MULTI_MIN`] functions, where the kernel
    /// has kprobe_multi links (5.18+): one link. Site index: the attach cookie.
    KprobeMulti,
    /// At least [`Sharing::UPROBES_MIN`] pid probes of one provider, module and name that
    /// run the same clauses with the same argument locations (5.15+, attach cookies): one
    /// program attached at every site. Site index: the attach cookie. The compiler decides,
    /// since it knows the clauses (see `lower/shared.rs`).
    Uprobes,
}

impl Sharing {
    /// Fewer fbt probes than this keep a kprobe (or fentry) program each.
    pub const KPROBE_MULTI_MIN: usize = 8;
    /// Fewer uprobes than this in a group keep a program each (no map, no lookups).
    pub const UPROBES_MIN: usize = 2;

    /// The syscall provider: `any_function` when the description's function is empty or
    /// `*`, `count` the syscalls it matches.
    pub fn raw_syscalls(any_function: bool, count: usize) -> Sharing {
        if any_function && count > 1 {
            Sharing::RawSyscalls
        } else {
            Sharing::None
        }
    }

    /// The fbt provider: `count` functions, `multi` when kprobe_multi links work and the
    /// fbtmethod option allows them.
    pub fn kprobe_multi(count: usize, multi: bool) -> Sharing {
        if count >= Self::KPROBE_MULTI_MIN && multi {
            Sharing::KprobeMulti
        } else {
            Sharing::None
        }
    }

    /// A group of `count` uprobes that compile alike, where attach cookies work.
    pub fn uprobes(count: usize, cookies: bool) -> Sharing {
        if count >= Self::UPROBES_MIN && cookies {
            Sharing::Uprobes
        } else {
            Sharing::None
        }
    }
}

pub trait ProbeResolver {
    /// Every probe matching `description` (already macro-expanded), or a user-facing reason.
    fn resolve(&mut self, description: &str) -> Result<Vec<ResolvedProbe>, String>;

    /// For a probe found after the first compile (a library the target mapped later), the
    /// number of the compile that found it first (0: the first compile). Programs are
    /// lowered in that order, so the clause and aggregation numbers of the programs already
    /// running stay the same.
    fn late(&self, _probe: &ResolvedProbe) -> u32 {
        0
    }
}
