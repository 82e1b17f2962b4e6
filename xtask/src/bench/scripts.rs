//! The benchmark's scripts, each written in D and in bpftrace 0.17's syntax.

use super::session::Tool;

pub struct Script {
    pub key: &'static str,
    pub label: &'static str,
    pub d: &'static str,
    pub bt: &'static str,
}

impl Script {
    pub fn text(&self, tool: Tool) -> &'static str {
        match tool {
            Tool::Tracer => self.d,
            Tool::Bpftrace => self.bt,
        }
    }
}

/// The clause every overhead/throughput script starts with: it prints `live` when the bench
/// (pid `$1`) calls getpgid(), which proves the tool's probes are attached. It sits on a
/// different tracepoint from getppid, so it costs the measured loop nothing; it is the first
/// clause so that its program is identical in every script (and can be left out of the
/// instruction counts).
pub fn trigger(tool: Tool) -> &'static str {
    match tool {
        Tool::Tracer => "syscall::getpgid:entry /pid == $1/ { printf(\"live\\n\"); }\n",
        Tool::Bpftrace => {
            "tracepoint:syscalls:sys_enter_getpgid /pid == $1/ { printf(\"live\\n\"); }\n"
        }
    }
}

/// Per-event overhead on `syscall_loop` (getppid in a loop).
pub const OVERHEAD: &[Script] = &[
    Script {
        key: "empty",
        label: "empty clause on getppid entry (floor)",
        d: "syscall::getppid:entry { }",
        bt: "tracepoint:syscalls:sys_enter_getppid { }",
    },
    Script {
        key: "empty2",
        label: "empty clauses on entry + return (floor of the pair)",
        d: "syscall::getppid:entry { }\nsyscall::getppid:return { }",
        bt: "tracepoint:syscalls:sys_enter_getppid { }\ntracepoint:syscalls:sys_exit_getppid { }",
    },
    Script {
        key: "count",
        label: "`@[execname] = count()`",
        d: "syscall::getppid:entry { @[execname] = count(); }",
        bt: "tracepoint:syscalls:sys_enter_getppid { @[comm] = count(); }",
    },
    Script {
        key: "quantize",
        label: "`@ = quantize(arg0)`",
        // getppid has no arguments: tracer's arg0 there is 0, so bpftrace gets hist(0).
        d: "syscall::getppid:entry { @ = quantize(arg0); }",
        bt: "tracepoint:syscalls:sys_enter_getppid { @ = hist(0); }",
    },
    Script {
        key: "latency",
        label: "entry/return latency (`self->ts`)",
        d: "syscall::getppid:entry { self->ts = timestamp; }\n\
            syscall::getppid:return /self->ts/ { @ = quantize(timestamp - self->ts); self->ts = 0; }",
        bt: "tracepoint:syscalls:sys_enter_getppid { @ts[tid] = nsecs; }\n\
             tracepoint:syscalls:sys_exit_getppid /@ts[tid]/ { @ = hist(nsecs - @ts[tid]); delete(@ts[tid]); }",
    },
    Script {
        key: "falsepred",
        label: "false predicate `/pid == 0/`",
        d: "syscall::getppid:entry /pid == 0/ { @ = count(); }",
        bt: "tracepoint:syscalls:sys_enter_getppid /pid == 0/ { @ = count(); }",
    },
];

/// printf throughput: one record per getppid call, written to a file.
pub const PRINTF: Script = Script {
    key: "printf",
    label: "`printf(\"ev %s %d %d\\n\", execname, pid, tid)` per getppid",
    d: "syscall::getppid:entry { printf(\"ev %s %d %d\\n\", execname, pid, tid); }",
    bt: "tracepoint:syscalls:sys_enter_getppid { printf(\"ev %s %d %d\\n\", comm, pid, tid); }",
};

/// Only the trigger (its programs are left out of the other scripts' instruction counts).
pub const TRIGGER_ONLY: Script = Script {
    key: "trigger",
    label: "trigger clause only",
    d: "",
    bt: "",
};

/// The file for a script: the trigger first, then the body.
pub fn source(tool: Tool, s: &Script) -> String {
    let mut text = String::new();
    if tool == Tool::Tracer {
        text.push_str("#pragma D option quiet\n");
    }
    text.push_str(trigger(tool));
    text.push_str(s.text(tool));
    text.push('\n');
    text
}
