//! DTrace's stable providers `proc`, `sched` and `io`, mapped onto kernel tracepoints as
//! Oracle's DTrace for Linux maps them. Each probe names the tracepoints it fires on and D
//! expressions that compute DTrace's arguments from the tracepoint's own (see
//! `ArgSource::Stable` and the README's table). Where DTrace passes a structure Linux does
//! not have (psinfo_t, lwpsinfo_t, bufinfo_t, devinfo_t), `args[i]` is the kernel object
//! closest to it (a `struct task_struct *`, `struct request *`, `struct gendisk *`) and
//! DTrace's members of it (`args[1]->pr_pid`, `args[0]->b_bcount`) are translated.

use super::{glob_match, Pattern};
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::btf::KernelTypes;
use tracer_lang::probes::{ArgSource, ResolvedProbe, StableArg, StableArgs};
use tracer_lang::types::Type;

/// Where a stable probe fires: a tracefs tracepoint (typed fields) or a raw tracepoint
/// (the kernel function's arguments, typed from BTF: `(name, struct or "")`).
enum Site {
    Tp(&'static str, &'static str),
    Raw(&'static str, &'static [(&'static str, &'static str)]),
}

struct Def {
    provider: &'static str,
    name: &'static str,
    sites: &'static [Site],
    /// (name, type shown by -lv, expression)
    args: &'static [(&'static str, &'static str, &'static str)],
    members: &'static [(u32, &'static str, &'static str)],
    thread: &'static [(&'static str, &'static str)],
    guard: Option<&'static str>,
}

const TASK: &str = "struct task_struct *";
const SWITCH: &[(&str, &str)] = &[
    ("preempt", ""),
    ("prev", "task_struct"),
    ("next", "task_struct"),
    ("prev_state", ""),
];
const FORK: &[(&str, &str)] = &[("parent", "task_struct"), ("child", "task_struct")];
const ONE_TASK: &[(&str, &str)] = &[("p", "task_struct")];
const RQ: &[(&str, &str)] = &[("rq", "request")];
const RQ_DONE: &[(&str, &str)] = &[("rq", "request"), ("error", ""), ("nr_bytes", "")];

/// lwpsinfo_t / psinfo_t members of the task `t` as args[i] and args[i + 1].
macro_rules! task_members {
    ($i:literal, $j:literal, $t:literal) => {
        &[
            ($i, "pr_lwpid", concat!($t, "->pid")),
            ($i, "pr_pri", concat!($t, "->prio")),
            ($i, "pr_onpro", concat!($t, "->on_cpu")),
            ($j, "pr_pid", concat!($t, "->tgid")),
            ($j, "pr_ppid", concat!($t, "->real_parent->tgid")),
            ($j, "pr_fname", concat!($t, "->comm")),
            ($j, "pr_uid", concat!($t, "->cred->uid.val")),
            ($j, "pr_gid", concat!($t, "->cred->gid.val")),
        ]
    };
}

/// The builtins of the task `t`, for a probe that runs "in" another thread than the
/// tracepoint's (sched:::on-cpu, proc:::start).
macro_rules! thread_of {
    ($t:literal) => {
        &[
            ("curthread", $t),
            ("pid", concat!($t, "->tgid")),
            ("tid", concat!($t, "->pid")),
            ("execname", concat!($t, "->comm")),
            ("ppid", concat!($t, "->real_parent->tgid")),
        ]
    };
}

/// bufinfo_t (args[0]), devinfo_t (args[1]) and fileinfo_t (args[2]) of a `struct request`.
/// An I/O is a write when its op is odd (`op_is_write()`); B_READ and B_WRITE are DTrace's.
macro_rules! io_members {
    ($bcount:literal, $error:literal) => {
        &[
            (0, "b_flags", "(args[0]->cmd_flags & 1) ? 0x100 : 0x40"),
            (0, "b_bcount", $bcount),
            (0, "b_bufsize", $bcount),
            (0, "b_blkno", "args[0]->__sector"),
            (0, "b_lblkno", "args[0]->__sector"),
            (0, "b_resid", "0"),
            (0, "b_error", $error),
            (
                0,
                "b_edev",
                "(args[0]->q->disk->major << 20) | args[0]->q->disk->first_minor",
            ),
            (1, "dev_major", "args[0]->q->disk->major"),
            (1, "dev_minor", "args[0]->q->disk->first_minor"),
            (1, "dev_instance", "args[0]->q->disk->first_minor"),
            (1, "dev_name", "args[0]->q->disk->disk_name"),
            (1, "dev_statname", "args[0]->q->disk->disk_name"),
            (2, "fi_name", "\"<none>\""),
            (2, "fi_dirname", "\"<none>\""),
            (2, "fi_pathname", "\"<none>\""),
        ]
    };
}

const LWP_PROC_NEXT: &[(&str, &str, &str)] = &[
    ("lwp", TASK, "args[2]"),
    ("proc", TASK, "args[2]->group_leader"),
];
const LWP_PROC_P: &[(&str, &str, &str)] = &[
    ("lwp", TASK, "args[0]"),
    ("proc", TASK, "args[0]->group_leader"),
];
const IO_ARGS: &[(&str, &str, &str)] = &[
    ("buf", "struct request *", "args[0]"),
    ("dev", "struct gendisk *", "args[0]->q->disk"),
    ("file", "void *", "0"),
];
const SIGNAL_SEND_ARGS: &[(&str, &str, &str)] = &[
    ("lwp", "pid_t", "args->pid"),
    ("pid", "pid_t", "args->pid"),
    ("sig", "int", "args->sig"),
];
const SIGNAL_MEMBERS: &[(u32, &str, &str)] = &[
    (0, "pr_lwpid", "args->pid"),
    (1, "pr_pid", "args->pid"),
    (1, "pr_fname", "args->comm"),
];
/// The runnable thread leaving its CPU to sleep: not preempted, and not TASK_RUNNING.
const SLEEPS: &str = "!args[0] && args[3] != 0";
const EXEC: &[Site] = &[
    Site::Tp("syscalls", "sys_enter_execve"),
    Site::Tp("syscalls", "sys_enter_execveat"),
];
const EXEC_EXIT: &[Site] = &[
    Site::Tp("syscalls", "sys_exit_execve"),
    Site::Tp("syscalls", "sys_exit_execveat"),
];

const DEFS: &[Def] = &[
    Def {
        provider: "proc",
        name: "create",
        sites: &[Site::Raw("sched_process_fork", FORK)],
        args: &[("child", TASK, "args[1]")],
        members: &[
            (0, "pr_pid", "args[1]->tgid"),
            (0, "pr_ppid", "args[0]->tgid"),
            (0, "pr_fname", "args[1]->comm"),
        ],
        thread: &[],
        guard: Some("args[1]->pid == args[1]->tgid"),
    },
    Def {
        provider: "proc",
        name: "exec",
        sites: EXEC,
        args: &[("path", "string", "copyinstr(args->filename)")],
        members: &[],
        thread: &[],
        guard: None,
    },
    Def {
        provider: "proc",
        name: "exec-failure",
        sites: EXEC_EXIT,
        args: &[("errno", "int", "(int)-args->ret")],
        members: &[],
        thread: &[],
        // -512..-516 (ERESTARTSYS and kin) are the kernel's own: a signal interrupted the
        // exec, which restarts or dies of the signal; no process sees them as a failure.
        guard: Some("args->ret < 0 && (args->ret > -512 || args->ret < -516)"),
    },
    Def {
        provider: "proc",
        name: "exec-success",
        sites: &[Site::Tp("sched", "sched_process_exec")],
        args: &[],
        members: &[],
        thread: &[],
        guard: None,
    },
    Def {
        provider: "proc",
        name: "exit",
        sites: &[Site::Tp("sched", "sched_process_exit")],
        // CLD_EXITED (1), CLD_KILLED (2) or CLD_DUMPED (3), from the wait status being built.
        args: &[(
            "reason",
            "int",
            "(curthread->exit_code & 0x7f) == 0 ? 1 : ((curthread->exit_code & 0x80) ? 3 : 2)",
        )],
        members: &[],
        thread: &[],
        // Set where the tracepoint has group_dead (6.16+): the process's last thread.
        guard: Some("args->group_dead"),
    },
    Def {
        provider: "proc",
        name: "lwp-create",
        sites: &[Site::Raw("sched_process_fork", FORK)],
        args: &[
            ("lwp", TASK, "args[1]"),
            ("proc", TASK, "args[1]->group_leader"),
        ],
        members: task_members!(0, 1, "args[1]"),
        thread: &[],
        guard: Some("args[1]->pid != args[1]->tgid"),
    },
    Def {
        provider: "proc",
        name: "lwp-exit",
        sites: &[Site::Tp("sched", "sched_process_exit")],
        args: &[],
        members: &[],
        thread: &[],
        guard: None,
    },
    Def {
        provider: "proc",
        name: "lwp-start",
        sites: &[Site::Raw("sched_process_fork", FORK)],
        args: &[],
        members: &[],
        thread: thread_of!("args[1]"),
        guard: None,
    },
    Def {
        provider: "proc",
        name: "signal-discard",
        sites: &[Site::Tp("signal", "signal_generate")],
        args: SIGNAL_SEND_ARGS,
        members: SIGNAL_MEMBERS,
        thread: &[],
        // TRACE_SIGNAL_IGNORED
        guard: Some("args->result == 1"),
    },
    Def {
        provider: "proc",
        name: "signal-handle",
        sites: &[Site::Tp("signal", "signal_deliver")],
        args: &[
            ("sig", "int", "args->sig"),
            ("info", "siginfo_t *", "0"),
            ("handler", "void (*)(void)", "args->sa_handler"),
        ],
        members: &[],
        thread: &[],
        guard: None,
    },
    Def {
        provider: "proc",
        name: "signal-send",
        sites: &[Site::Tp("signal", "signal_generate")],
        args: SIGNAL_SEND_ARGS,
        members: SIGNAL_MEMBERS,
        thread: &[],
        guard: None,
    },
    Def {
        provider: "proc",
        name: "start",
        sites: &[Site::Raw("sched_process_fork", FORK)],
        args: &[],
        members: &[],
        thread: thread_of!("args[1]"),
        guard: Some("args[1]->pid == args[1]->tgid"),
    },
    Def {
        provider: "sched",
        name: "dequeue",
        sites: &[Site::Raw("sched_switch", SWITCH)],
        args: &[
            ("lwp", TASK, "args[1]"),
            ("proc", TASK, "args[1]->group_leader"),
            ("cpu", "int", "cpu"),
        ],
        members: task_members!(0, 1, "args[1]"),
        thread: &[],
        guard: Some(SLEEPS),
    },
    Def {
        provider: "sched",
        name: "enqueue",
        sites: &[
            Site::Raw("sched_wakeup", ONE_TASK),
            Site::Raw("sched_wakeup_new", ONE_TASK),
        ],
        args: &[
            ("lwp", TASK, "args[0]"),
            ("proc", TASK, "args[0]->group_leader"),
            ("cpu", "int", "args[0]->wake_cpu"),
        ],
        members: task_members!(0, 1, "args[0]"),
        thread: &[],
        guard: None,
    },
    Def {
        provider: "sched",
        name: "off-cpu",
        sites: &[Site::Raw("sched_switch", SWITCH)],
        args: LWP_PROC_NEXT,
        members: task_members!(0, 1, "args[2]"),
        thread: &[],
        guard: None,
    },
    Def {
        provider: "sched",
        name: "on-cpu",
        sites: &[Site::Raw("sched_switch", SWITCH)],
        args: &[],
        members: &[],
        thread: thread_of!("args[2]"),
        guard: None,
    },
    Def {
        provider: "sched",
        name: "preempt",
        sites: &[Site::Raw("sched_switch", SWITCH)],
        args: &[],
        members: &[],
        thread: &[],
        guard: Some("args[0] || args[3] == 0"),
    },
    Def {
        provider: "sched",
        name: "sleep",
        sites: &[Site::Raw("sched_switch", SWITCH)],
        args: &[],
        members: &[],
        thread: &[],
        guard: Some(SLEEPS),
    },
    Def {
        provider: "sched",
        name: "wakeup",
        sites: &[Site::Raw("sched_waking", ONE_TASK)],
        args: LWP_PROC_P,
        members: task_members!(0, 1, "args[0]"),
        thread: &[],
        guard: None,
    },
    Def {
        provider: "io",
        name: "done",
        sites: &[Site::Raw("block_rq_complete", RQ_DONE)],
        args: IO_ARGS,
        members: io_members!("args[2]", "args[1]"),
        thread: &[],
        guard: None,
    },
    Def {
        provider: "io",
        name: "start",
        sites: &[Site::Raw("block_rq_issue", RQ)],
        args: IO_ARGS,
        members: io_members!("args[0]->__data_len", "0"),
        thread: &[],
        guard: None,
    },
];

fn desc(d: &Def) -> ProbeDesc {
    ProbeDesc {
        id: 0,
        provider: d.provider.into(),
        module: "vmlinux".into(),
        function: String::new(),
        name: d.name.into(),
    }
}

/// Every stable probe, for `-l` (no kernel access: the table is fixed).
pub fn list() -> Vec<ProbeDesc> {
    DEFS.iter().map(desc).collect()
}

/// True when `provider` may name a stable provider (so other providers are not asked).
pub fn applies(provider: &str) -> bool {
    provider.is_empty()
        || ["proc", "sched", "io"]
            .iter()
            .any(|p| glob_match(provider, p))
}

pub fn resolve(p: &Pattern, kernel: &KernelTypes) -> Result<Vec<ResolvedProbe>, String> {
    let mut out = Vec::new();
    for d in DEFS {
        let pd = desc(d);
        if !p.matches(&pd) {
            continue;
        }
        for site in d.sites {
            let (attach, base) = match site {
                Site::Tp(cat, name) => {
                    let fields = super::tracefs::format(cat, name)
                        .map_err(|e| format!("{}: {e}", pd.full_name()))?;
                    (
                        Attach::Tracepoint {
                            category: cat.to_string(),
                            name: name.to_string(),
                        },
                        ArgSource::Tracepoint { fields },
                    )
                }
                Site::Raw(name, params) => {
                    let params = params
                        .iter()
                        .map(|(n, s)| (n.to_string(), param_type(kernel, s)))
                        .collect();
                    (
                        Attach::RawTracepoint {
                            name: name.to_string(),
                        },
                        // A raw tracepoint's context is its arguments as u64s, as fentry's.
                        ArgSource::Fbt {
                            params,
                            ret_type: Type::Void,
                            ret: false,
                            fentry: true,
                        },
                    )
                }
            };
            let guard = match (d.guard, &base) {
                // Before 6.16 sched_process_exit has no group_dead: exit fires per thread.
                (Some(g), ArgSource::Tracepoint { fields })
                    if g.contains("group_dead")
                        && !fields.iter().any(|f| f.name == "group_dead") =>
                {
                    None
                }
                (g, _) => g.map(String::from),
            };
            let stable = StableArgs {
                base,
                args: d
                    .args
                    .iter()
                    .map(|(n, t, e)| StableArg {
                        name: n.to_string(),
                        ty: t.to_string(),
                        expr: e.to_string(),
                    })
                    .collect(),
                members: d
                    .members
                    .iter()
                    .map(|(i, m, e)| (*i, m.to_string(), e.to_string()))
                    .collect(),
                thread: d
                    .thread
                    .iter()
                    .map(|(n, e)| (n.to_string(), e.to_string()))
                    .collect(),
                guard,
            };
            out.push(ResolvedProbe {
                desc: pd.clone(),
                attach,
                args: ArgSource::Stable(Box::new(stable)),
                sites: Vec::new(),
            });
        }
    }
    Ok(out)
}

/// A raw tracepoint parameter: `struct NAME *` from kernel BTF, or a 64-bit integer.
fn param_type(kernel: &KernelTypes, strukt: &str) -> Type {
    if strukt.is_empty() {
        return Type::LONG;
    }
    let s = kernel
        .get()
        .and_then(|b| b.struct_type(strukt, false))
        .unwrap_or(Type::Void);
    Type::Ptr(Box::new(s))
}
