//! Kernel structure offsets the generated programs need (`ppid`, `vtimestamp`, pid
//! namespaces, cgroups), looked up in kernel BTF through the compiler's BTF reader.

use tracer_lang::btf::{Btf, KernelTypes};
use tracer_lang::lower::{CgroupOffsets, NsOffsets, PidOffsets, TaskOffsets};

/// `task_struct.real_parent`, `.tgid` and `.se.sum_exec_runtime`, or None without BTF.
pub fn task_offsets(kernel: &KernelTypes) -> Option<TaskOffsets> {
    let b = kernel.get()?;
    Some(TaskOffsets {
        real_parent: b.offset_of("task_struct", "real_parent")?,
        tgid: b.offset_of("task_struct", "tgid")?,
        sum_exec_runtime: b.offset_of("task_struct", "se.sum_exec_runtime")?,
    })
}

/// The offsets a pid-namespace scope and `pidns` walk (`task->thread_pid->numbers[L]`), or
/// None without kernel BTF.
pub fn pid_offsets(kernel: &KernelTypes) -> Option<PidOffsets> {
    pid_offsets_in(kernel.get()?)
}

fn pid_offsets_in(b: &Btf) -> Option<PidOffsets> {
    Some(PidOffsets {
        thread_pid: b.offset_of("task_struct", "thread_pid")?,
        group_leader: b.offset_of("task_struct", "group_leader")?,
        real_parent: b.offset_of("task_struct", "real_parent")?,
        pid_level: b.offset_of("pid", "level")?,
        pid_numbers: b.offset_of("pid", "numbers")?,
        upid_size: b.struct_size("upid")?,
        upid_nr: b.offset_of("upid", "nr")?,
        upid_ns: b.offset_of("upid", "ns")?,
        ns_inum: b.offset_of("pid_namespace", "ns.inum")?,
    })
}

/// Pid-namespace and cgroup offsets, for `pidns`, `cgroup` and `container`.
pub fn ns_offsets(kernel: &KernelTypes) -> Option<NsOffsets> {
    let b = kernel.get()?;
    Some(NsOffsets {
        pid: pid_offsets_in(b)?,
        cgroup: CgroupOffsets {
            task_cgroups: b.offset_of("task_struct", "cgroups")?,
            css_dfl_cgrp: b.offset_of("css_set", "dfl_cgrp")?,
            cgroup_kn: b.offset_of("cgroup", "kn")?,
            // Renamed when it became RCU-protected (6.15).
            kn_parent: b
                .offset_of("kernfs_node", "parent")
                .or_else(|| b.offset_of("kernfs_node", "__parent"))?,
            kn_name: b.offset_of("kernfs_node", "name")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_task_struct_on_this_kernel() {
        let kernel = KernelTypes::system();
        match task_offsets(&kernel) {
            Some(o) => assert!(o.real_parent > 0 && o.tgid > 0 && o.sum_exec_runtime > 0),
            None => eprintln!("skipped: no /sys/kernel/btf/vmlinux"),
        }
    }

    #[test]
    fn finds_struct_pid_on_this_kernel() {
        let kernel = KernelTypes::system();
        if kernel.get().is_none() {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
            return;
        }
        let o = pid_offsets(&kernel).expect("struct pid / upid / pid_namespace in BTF");
        // struct upid { int nr; struct pid_namespace *ns; } on every 64-bit kernel.
        assert_eq!((o.upid_size, o.upid_nr, o.upid_ns), (16, 0, 8));
        assert!(o.thread_pid > 0 && o.pid_numbers > o.pid_level, "{o:?}");
        let n = ns_offsets(&kernel).expect("css_set / cgroup / kernfs_node in BTF");
        assert!(n.cgroup.task_cgroups > 0 && n.cgroup.kn_name != n.cgroup.kn_parent);
    }
}
