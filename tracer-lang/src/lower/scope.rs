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

/// Offsets of the cgroup structures `cgroup` and `container` walk, from kernel BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupOffsets {
    /// `task_struct.cgroups` (`struct css_set *`).
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp`: the task's cgroup in the v2 hierarchy.
    pub css_dfl_cgrp: u32,
    /// `cgroup.kn`: its kernfs directory.
    pub cgroup_kn: u32,
    /// `kernfs_node.parent` (`__parent` since 6.15).
    pub kn_parent: u32,
    /// `kernfs_node.name`.
    pub kn_name: u32,
}

/// Everything the namespace and cgroup built-ins read, for `CompileInput::ns_offsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsOffsets {
    pub pid: PidOffsets,
    pub cgroup: CgroupOffsets,
}

/// Cgroup levels `cgroup` and `container` look at, from the task's cgroup up. Container
/// runtimes nest 2 to 5 deep (kubepods.slice/…/cri-containerd-ID.scope); a deeper path
/// loses its top components.
pub const CGROUP_DEPTH: u32 = 8;

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
                let leader = self.read_kernel_field(task, o.group_leader, Size::DW);
                self.ns_pid(leader)
            }
            _ => {
                // getppid(): the parent's thread-group id, 0 when the parent is outside.
                let parent = self.read_kernel_field(task, o.real_parent, Size::DW);
                let leader = self.read_kernel_field(parent, o.group_leader, Size::DW);
                self.ns_pid(leader)
            }
        })
    }

    /// The current process's pid as tracer's /proc names it: user stacks and symbols are
    /// symbolized through /proc/PID, so in a pid-namespace scope that is the scope's pid.
    pub(crate) fn proc_pid(&mut self) -> VReg {
        if let Some(v) = self.scoped_pid("pid") {
            return v;
        }
        let t = self.f.call(helper::GET_CURRENT_PID_TGID, vec![]);
        self.f.alu(AluOp::Rsh, t, Operand::Imm(32))
    }

    /// `pidns`: the inode number of the current task's own pid namespace.
    pub(crate) fn own_pidns(&mut self, o: PidOffsets) -> VReg {
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        let pid = self.read_kernel_field(task, o.thread_pid, Size::DW);
        let level = self.read_kernel_field(pid, o.pid_level, Size::W);
        let idx = self
            .f
            .alu(AluOp::Mul, level, Operand::Imm(o.upid_size as i64));
        let upid = self.f.alu(AluOp::Add, pid, idx);
        let ns = self.read_kernel_field(upid, o.pid_numbers + o.upid_ns, Size::DW);
        self.read_kernel_field(ns, o.ns_inum, Size::W)
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
        let pid = self.read_kernel_field(task, o.thread_pid, Size::DW);
        // One read from `level` through `numbers[L]` (a helper call costs more than the
        // bytes). For a task above L it runs past the task's `struct pid`, harmlessly: a
        // probe read, and `level` then says the rest is not to be used.
        let upid = o.pid_numbers + level * o.upid_size;
        let len = upid + o.upid_size - o.pid_level;
        let slot = self.temp(len);
        let chunk = self.scratch_ptr(slot);
        let src = self
            .f
            .alu(AluOp::Add, pid, Operand::Imm(o.pid_level as i64));
        self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![chunk.into(), Operand::Imm(len as i64), src.into()],
        );
        let task_level = self.f.load(chunk, 0, Size::W);
        self.f
            .branch(JmpOp::Jlt, task_level, Operand::Imm(level as i64), done);
        let at = (upid - o.pid_level) as i16;
        let ns = self.f.load(chunk, at + o.upid_ns as i16, Size::DW);
        let ino = self.read_kernel_field(ns, o.ns_inum, Size::W);
        self.f
            .branch(JmpOp::Jne, ino, Operand::Imm(inum as i64), done);
        let nr = self.f.load(chunk, at + o.upid_nr as i16, Size::W);
        self.f.push(Inst::Mov {
            dst: out,
            src: nr.into(),
        });
        self.f.push(Inst::Label(done));
        out
    }

    /// The current task's cgroup v2 directory (`kernfs_node *`).
    fn current_cgroup_kn(&mut self, o: CgroupOffsets) -> VReg {
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        let css = self.read_kernel_field(task, o.task_cgroups, Size::DW);
        let cg = self.read_kernel_field(css, o.css_dfl_cgrp, Size::DW);
        self.read_kernel_field(cg, o.cgroup_kn, Size::DW)
    }

    /// `cgroup`: the path of the current task's cgroup v2 directory from the hierarchy's
    /// root ("/" for the root), as in /proc/PID/cgroup seen from the initial cgroup namespace.
    pub(crate) fn cgroup_path(&mut self, o: CgroupOffsets) -> VReg {
        let strsize = self.g.opts.strsize as i64;
        let kn = self.current_cgroup_kn(o);
        // The non-root directories from the leaf up, in 8-byte slots (0: none).
        let slots = self.temp(8 * CGROUP_DEPTH);
        let ptrs = self.scratch_ptr(slots);
        self.f.push(Inst::MemZero {
            dst: ptrs,
            len: 8 * CGROUP_DEPTH,
        });
        let cur = self.f.mov(kn);
        let collected = self.f.label();
        for k in 0..CGROUP_DEPTH {
            self.f.branch(JmpOp::Jeq, cur, Operand::Imm(0), collected);
            let parent = self.read_kernel_field(cur, o.kn_parent, Size::DW);
            self.f
                .branch(JmpOp::Jeq, parent, Operand::Imm(0), collected);
            self.f.store(ptrs, 8 * k as i16, cur, Size::DW);
            self.f.push(Inst::Mov {
                dst: cur,
                src: parent.into(),
            });
        }
        self.f.push(Inst::Label(collected));
        // Twice strsize: every append may take strsize bytes wherever the previous ended;
        // the result is cut at strsize.
        let off = self.temp(2 * strsize as u32);
        let out = self.scratch_ptr(off);
        self.f.store(out, 0, Operand::Imm(b'/' as i64), Size::B);
        self.f.store(out, 1, Operand::Imm(0), Size::B);
        let at = self.f.imm(0);
        for k in (0..CGROUP_DEPTH).rev() {
            let skip = self.f.label();
            let p = self.f.load(ptrs, 8 * k as i16, Size::DW);
            self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), skip);
            let name = self.read_kernel_field(p, o.kn_name, Size::DW);
            let atc = self.clamp(at, strsize - 1);
            let slash = self.f.alu(AluOp::Add, out, atc);
            self.f.store(slash, 0, Operand::Imm(b'/' as i64), Size::B);
            let dst = self.f.alu(AluOp::Add, slash, Operand::Imm(1));
            let n = self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![dst.into(), Operand::Imm(strsize), name.into()],
            );
            self.f.branch(JmpOp::Jslt, n, Operand::Imm(1), skip);
            // n counts the NUL: the next '/' goes over it.
            let next = self.f.alu(AluOp::Add, atc, n);
            self.f.push(Inst::Mov {
                dst: at,
                src: next.into(),
            });
            self.f.push(Inst::Label(skip));
        }
        self.f
            .store(out, strsize as i16 - 1, Operand::Imm(0), Size::B);
        out
    }

    /// `container`: the short (12 hex digit) id of the container the current task runs in,
    /// from the nearest cgroup directory named as container runtimes name them: `ID`
    /// (docker and kubelet with the cgroupfs driver), `docker-ID.scope`,
    /// `cri-containerd-ID.scope`, `crio-ID.scope`, `libpod-ID.scope` (systemd driver), with
    /// ID 64 hex digits; "" when there is none (the host).
    pub(crate) fn container_id(&mut self, o: CgroupOffsets) -> VReg {
        const WINDOW: i64 = 128;
        const ID: i64 = 64;
        const SHORT: i64 = 12;
        let strsize = self.g.opts.strsize;
        let off = self.temp(strsize.max(16));
        let out = self.scratch_ptr(off);
        self.f.push(Inst::MemZero { dst: out, len: 16 });
        let name_off = self.temp(WINDOW as u32);
        let buf = self.scratch_ptr(name_off);
        let cur = self.current_cgroup_kn(o);
        let cur = self.f.mov(cur);
        let done = self.f.label();
        for _ in 0..CGROUP_DEPTH {
            let next = self.f.label();
            self.f.branch(JmpOp::Jeq, cur, Operand::Imm(0), done);
            let name = self.read_kernel_field(cur, o.kn_name, Size::DW);
            let n = self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![buf.into(), Operand::Imm(WINDOW), name.into()],
            );
            // len = n - 1; names shorter than an id cannot hold one.
            self.f.branch(JmpOp::Jslt, n, Operand::Imm(ID + 1), next);
            let len = self.f.alu(AluOp::Sub, n, Operand::Imm(1));
            // The id ends at the end, or before a ".scope" suffix.
            let end = self.f.mov(len);
            let no_suffix = self.f.label();
            let tail = self.f.alu(AluOp::Sub, len, Operand::Imm(6));
            let tail = self.clamp(tail, WINDOW - 6);
            let tail_p = self.f.alu(AluOp::Add, buf, tail);
            for (i, c) in b".scope".iter().enumerate() {
                let b = self.f.load(tail_p, i as i16, Size::B);
                self.f
                    .branch(JmpOp::Jne, b, Operand::Imm(*c as i64), no_suffix);
            }
            self.f.push(Inst::Mov {
                dst: end,
                src: tail.into(),
            });
            self.f.push(Inst::Label(no_suffix));
            let start = self.f.alu(AluOp::Sub, end, Operand::Imm(ID));
            self.f.branch(JmpOp::Jslt, start, Operand::Imm(0), next);
            let start = self.clamp(start, WINDOW - ID);
            let id = self.f.alu(AluOp::Add, buf, start);
            // Preceded by nothing or by '-'.
            let sep_ok = self.f.label();
            self.f.branch(JmpOp::Jeq, start, Operand::Imm(0), sep_ok);
            let before = self.f.alu(AluOp::Sub, id, Operand::Imm(1));
            let b = self.f.load(before, 0, Size::B);
            self.f
                .branch(JmpOp::Jne, b, Operand::Imm(b'-' as i64), next);
            self.f.push(Inst::Label(sep_ok));
            for i in (0..SHORT).chain([ID - 1]) {
                let c = self.f.load(id, i as i16, Size::B);
                let ok = self.f.label();
                self.f
                    .branch(JmpOp::Jlt, c, Operand::Imm(b'0' as i64), next);
                self.f.branch(JmpOp::Jle, c, Operand::Imm(b'9' as i64), ok);
                self.f
                    .branch(JmpOp::Jlt, c, Operand::Imm(b'a' as i64), next);
                self.f
                    .branch(JmpOp::Jgt, c, Operand::Imm(b'f' as i64), next);
                self.f.push(Inst::Label(ok));
            }
            self.f.call(
                helper::PROBE_READ_KERNEL,
                vec![out.into(), Operand::Imm(SHORT), id.into()],
            );
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(next));
            let parent = self.read_kernel_field(cur, o.kn_parent, Size::DW);
            self.f.push(Inst::Mov {
                dst: cur,
                src: parent.into(),
            });
        }
        self.f.push(Inst::Label(done));
        out
    }

    /// `*(base + off)` read with `bpf_probe_read_kernel` (0 when the read faults).
    fn read_kernel_field(&mut self, base: VReg, off: u32, size: Size) -> VReg {
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
