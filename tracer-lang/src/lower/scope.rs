//! Scope: which tasks a program sees, and pids as tracer's own pid namespace numbers them.
//!
//! eBPF probes fire for every task on the machine. When tracer runs in a container it must
//! see only that container, so with a scope other than `Host` every program starts (right
//! after the run-state gate) with a check of the current task, and returns before any
//! predicate, aggregation or record when the task is outside. With `Host` nothing is added:
//! the default costs nothing.
//!
//! The pid-namespace check is the kernel's `pid_nr_ns()`: a task is in namespace N at level
//! L, or in one of N's descendants, iff `thread_pid->level >= L` and
//! `thread_pid->numbers[L].ns == N`; its pid there is `numbers[L].nr`. The helper
//! `bpf_get_ns_current_pid_tgid` cannot do this: it answers only for tasks whose own
//! namespace is exactly N, and fails for nested ones.

use super::Lower;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Label, Operand, VReg};

/// The name of the `BPF_MAP_TYPE_CGROUP_ARRAY` a cgroup scope tests against (slot 0).
pub const SCOPE_CGROUP_MAP: &str = "scope_cgroup";
const CGROUP_ARRAY: u32 = 8;
const CURRENT_TASK_UNDER_CGROUP: i32 = 37;

/// Offsets of the kernel structures a pid namespace lookup walks, from kernel BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidOffsets {
    /// `task_struct.thread_pid` (`struct pid *`).
    pub thread_pid: u32,
    /// `task_struct.group_leader`.
    pub group_leader: u32,
    /// `task_struct.real_parent`.
    pub real_parent: u32,
    /// `pid.level` (unsigned int).
    pub pid_level: u32,
    /// `pid.numbers` (array of `struct upid`).
    pub pid_numbers: u32,
    /// `sizeof(struct upid)`.
    pub upid_size: u32,
    /// `upid.nr` (int).
    pub upid_nr: u32,
    /// `upid.ns` (`struct pid_namespace *`).
    pub upid_ns: u32,
    /// `pid_namespace.ns` + `ns_common.inum`: the namespace's inode number.
    pub ns_inum: u32,
}

/// Which tasks the programs see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every task; pids are the host's (init namespace) pids.
    Host,
    /// Tasks of the pid namespace with inode `inum` at nesting `level` (0 = init) and of
    /// its descendants; `pid`, `tid` and `ppid` are numbers in that namespace.
    PidNs {
        level: u32,
        inum: u32,
        offsets: PidOffsets,
    },
    /// Tasks in the cgroup v2 subtree whose directory fd the runtime stores in slot 0 of
    /// `SCOPE_CGROUP_MAP`. `fd` is that descriptor in tracer's own process.
    Cgroup { fd: u32 },
}

impl<'g, 'a> Lower<'g, 'a> {
    /// The scope check: jump to `out` when the current task is outside the scope.
    pub(crate) fn scope_check(&mut self, out: Label) {
        match self.g.input.scope {
            Scope::Host => {}
            Scope::PidNs { .. } => {
                let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
                let nr = self.ns_pid(task);
                self.f.branch(JmpOp::Jeq, nr, Operand::Imm(0), out);
            }
            Scope::Cgroup { .. } => {
                let id = self.cgroup_map();
                let m = self.f.map_ptr(id);
                // 1: under the cgroup; 0: not; negative: empty slot (never in scope).
                let r = self
                    .f
                    .call(CURRENT_TASK_UNDER_CGROUP, vec![m.into(), Operand::Imm(0)]);
                self.f.branch(JmpOp::Jne, r, Operand::Imm(1), out);
            }
        }
    }

    fn cgroup_map(&mut self) -> tracer_ebpf::ir::MapId {
        if let Some(i) = self.g.maps.iter().position(|m| m.name == SCOPE_CGROUP_MAP) {
            return tracer_ebpf::ir::MapId(i as u32);
        }
        self.g.add_map(super::MapSpec {
            name: SCOPE_CGROUP_MAP.into(),
            map_type: CGROUP_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
        })
    }

    /// `pid`, `tid` or `ppid` in the scope's pid namespace; None when the scope does not
    /// renumber pids (the caller then uses the cheap helpers).
    pub(crate) fn scoped_pid(&mut self, name: &str) -> Option<VReg> {
        let Scope::PidNs { offsets: o, .. } = self.g.input.scope else {
            return None;
        };
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        Some(match name {
            "tid" => self.ns_pid(task),
            "pid" => {
                let leader = self.read_kernel(task, o.group_leader, Size::DW);
                self.ns_pid(leader)
            }
            _ => {
                // getppid(): the parent's thread-group id, 0 when the parent is outside.
                let parent = self.read_kernel(task, o.real_parent, Size::DW);
                let leader = self.read_kernel(parent, o.group_leader, Size::DW);
                self.ns_pid(leader)
            }
        })
    }

    /// `pidns`: the inode number of the current task's own pid namespace.
    pub(crate) fn own_pidns(&mut self, o: PidOffsets) -> VReg {
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        let pid = self.read_kernel(task, o.thread_pid, Size::DW);
        let level = self.read_kernel(pid, o.pid_level, Size::W);
        let idx = self
            .f
            .alu(AluOp::Mul, level, Operand::Imm(o.upid_size as i64));
        let upid = self.f.alu(AluOp::Add, pid, idx);
        let ns = self.read_kernel(upid, o.pid_numbers + o.upid_ns, Size::DW);
        self.read_kernel(ns, o.ns_inum, Size::W)
    }

    /// `task`'s pid in the scope's namespace, or 0 when the task is outside it.
    fn ns_pid(&mut self, task: VReg) -> VReg {
        let Scope::PidNs {
            level,
            inum,
            offsets: o,
        } = self.g.input.scope
        else {
            return self.f.imm(0);
        };
        let out = self.f.imm(0);
        let done = self.f.label();
        let pid = self.read_kernel(task, o.thread_pid, Size::DW);
        let task_level = self.read_kernel(pid, o.pid_level, Size::W);
        self.f
            .branch(JmpOp::Jlt, task_level, Operand::Imm(level as i64), done);
        let upid = o.pid_numbers + level * o.upid_size;
        let ns = self.read_kernel(pid, upid + o.upid_ns, Size::DW);
        let ino = self.read_kernel(ns, o.ns_inum, Size::W);
        self.f
            .branch(JmpOp::Jne, ino, Operand::Imm(inum as i64), done);
        let nr = self.read_kernel(pid, upid + o.upid_nr, Size::W);
        self.f.push(Inst::Mov {
            dst: out,
            src: nr.into(),
        });
        self.f.push(Inst::Label(done));
        out
    }

    /// `*(base + off)` read with `bpf_probe_read_kernel` (0 when the read faults).
    fn read_kernel(&mut self, base: VReg, off: u32, size: Size) -> VReg {
        let slot = self.temp(8);
        let dst = self.scratch_ptr(slot);
        self.f.store(dst, 0, Operand::Imm(0), Size::DW);
        let addr = self.f.alu(AluOp::Add, base, Operand::Imm(off as i64));
        self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![dst.into(), Operand::Imm(size.bytes() as i64), addr.into()],
        );
        self.f.load(dst, 0, size)
    }
}
