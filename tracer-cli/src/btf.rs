//! Kernel type offsets from BTF (`/sys/kernel/btf/vmlinux`), for the built-ins that read
//! `task_struct` (`ppid`, `vtimestamp`). A small reader: aya's BTF type lookups are crate-private.

use tracer_lang::lower::TaskOffsets;

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
            return Some(out);
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
}
