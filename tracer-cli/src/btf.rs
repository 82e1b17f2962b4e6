//! Kernel type offsets from BTF (`/sys/kernel/btf/vmlinux`), for the built-ins that read
//! `task_struct` (`ppid`, `vtimestamp`). A small reader: aya's BTF type lookups are crate-private.

use tracer_lang::lower::{CgroupOffsets, NsOffsets, PidOffsets, TaskOffsets};

/// `task_struct.real_parent` and `task_struct.tgid`, or None without kernel BTF.
pub fn task_offsets() -> Option<TaskOffsets> {
    let data = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    let task = struct_members(&data, "task_struct")?;
    let se = struct_members(&data, "sched_entity")?;
    let find =
        |m: &[(String, u32)], n: &str| m.iter().find(|(name, _)| name == n).map(|(_, off)| *off);
    Some(TaskOffsets {
        real_parent: find(&task, "real_parent")?,
        tgid: find(&task, "tgid")?,
        sum_exec_runtime: find(&task, "se")? + find(&se, "sum_exec_runtime")?,
    })
}

/// The offsets a pid-namespace scope and `pidns` walk (`task->thread_pid->numbers[L]`), or
/// None without kernel BTF.
pub fn pid_offsets() -> Option<PidOffsets> {
    let data = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    let find = |s: &str, n: &str| {
        let (_, m) = struct_layout(&data, s)?;
        m.into_iter()
            .find(|(name, _)| name == n)
            .map(|(_, off)| off)
    };
    Some(PidOffsets {
        thread_pid: find("task_struct", "thread_pid")?,
        group_leader: find("task_struct", "group_leader")?,
        real_parent: find("task_struct", "real_parent")?,
        pid_level: find("pid", "level")?,
        pid_numbers: find("pid", "numbers")?,
        upid_size: struct_layout(&data, "upid")?.0,
        upid_nr: find("upid", "nr")?,
        upid_ns: find("upid", "ns")?,
        ns_inum: find("pid_namespace", "ns")? + find("ns_common", "inum")?,
    })
}

/// Pid-namespace and cgroup offsets, for `pidns`, `cgroup` and `container`.
pub fn ns_offsets() -> Option<NsOffsets> {
    let data = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    let find = |s: &str, n: &str| {
        let (_, m) = struct_layout(&data, s)?;
        m.into_iter()
            .find(|(name, _)| name == n)
            .map(|(_, off)| off)
    };
    Some(NsOffsets {
        pid: pid_offsets()?,
        cgroup: CgroupOffsets {
            task_cgroups: find("task_struct", "cgroups")?,
            css_dfl_cgrp: find("css_set", "dfl_cgrp")?,
            cgroup_kn: find("cgroup", "kn")?,
            // Renamed when it became RCU-protected (6.15).
            kn_parent: find("kernfs_node", "parent").or_else(|| find("kernfs_node", "__parent"))?,
            kn_name: find("kernfs_node", "name")?,
        },
    })
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

fn name_at(strings: &[u8], off: u32) -> &str {
    let s = strings.get(off as usize..).unwrap_or(&[]);
    let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
    std::str::from_utf8(&s[..end]).unwrap_or("")
}

/// (member name, byte offset) of the first struct called `name`.
pub fn struct_members(d: &[u8], name: &str) -> Option<Vec<(String, u32)>> {
    struct_layout(d, name).map(|(_, m)| m)
}

/// The size and the (member name, byte offset) list of the first struct called `name`.
fn struct_layout(d: &[u8], name: &str) -> Option<(u32, Vec<(String, u32)>)> {
    if d.get(0..2)? != [0x9f, 0xeb] {
        return None;
    }
    let hdr_len = u32_at(d, 4)? as usize;
    let type_off = hdr_len + u32_at(d, 8)? as usize;
    let type_end = type_off + u32_at(d, 12)? as usize;
    let str_off = hdr_len + u32_at(d, 16)? as usize;
    let strings = d.get(str_off..str_off + u32_at(d, 20)? as usize)?;
    let mut at = type_off;
    while at + 12 <= type_end {
        let name_off = u32_at(d, at)?;
        let info = u32_at(d, at + 4)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kflag = info >> 31 == 1;
        at += 12;
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 => 12 * vlen,
            6 | 13 => 8 * vlen,
            15 | 19 => 12 * vlen,
            _ => 0,
        };
        if kind == 4 && name_at(strings, name_off) == name {
            let mut out = Vec::new();
            for i in 0..vlen {
                let m = at + 12 * i;
                let mname = name_at(strings, u32_at(d, m)?).to_string();
                let bits = u32_at(d, m + 8)?;
                let bit_off = if kflag { bits & 0xff_ffff } else { bits };
                out.push((mname, bit_off / 8));
            }
            return Some((u32_at(d, at - 4)?, out));
        }
        at += extra;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_task_struct_on_this_kernel() {
        // Every kernel tracer supports has BTF in CI; skip quietly elsewhere with a message.
        match super::task_offsets() {
            Some(o) => assert!(o.real_parent > 0 && o.tgid > 0),
            None => eprintln!("skipped: no /sys/kernel/btf/vmlinux"),
        }
    }

    #[test]
    fn finds_struct_pid_on_this_kernel() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
            return;
        }
        let o = super::pid_offsets().expect("struct pid / upid / pid_namespace in BTF");
        // struct upid { int nr; struct pid_namespace *ns; } on every 64-bit kernel.
        assert_eq!((o.upid_size, o.upid_nr, o.upid_ns), (16, 0, 8));
        assert!(o.thread_pid > 0 && o.pid_numbers > o.pid_level, "{o:?}");
        let n = super::ns_offsets().expect("css_set / cgroup / kernfs_node in BTF");
        assert!(n.cgroup.task_cgroups > 0 && n.cgroup.kn_name != n.cgroup.kn_parent);
    }
}
