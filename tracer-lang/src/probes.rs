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
    /// How many probes this one stands for: more than 1 for `syscall:::entry`, one
    /// raw_syscalls program whose `probefunc` is looked up by syscall number.
    pub covers: u32,
}

impl ResolvedProbe {
    /// True when `probefunc` varies per firing (see `covers`).
    pub fn dynamic_func(&self) -> bool {
        self.covers > 1
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
