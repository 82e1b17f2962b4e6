//! Test fixtures shared by the integration tests: a tiny fake kernel BTF.

use tracer_lang::types::Type;

/// `struct task_struct` as the fake kernel's BTF (type id 4) describes it.
pub fn fake_task() -> Type {
    Type::Struct {
        id: 4,
        name: "task_struct".into(),
        size: 40,
        union: false,
    }
}

/// A tiny kernel BTF: `struct task_struct { int pid; char comm[16]; struct task_struct
/// *real_parent; unsigned int :5, flags:3; }` (size 40), enough to pin member access.
pub fn fake_btf() -> Vec<u8> {
    let mut strings = b"\0".to_vec();
    let mut name = |n: &str| {
        let off = strings.len() as u32;
        strings.extend_from_slice(n.as_bytes());
        strings.push(0);
        off
    };
    let (int, char_, task, pid, comm, parent, flags, uint) = (
        name("int"),
        name("char"),
        name("task_struct"),
        name("pid"),
        name("comm"),
        name("real_parent"),
        name("flags"),
        name("unsigned int"),
    );
    let mut types: Vec<u32> = Vec::new();
    let info = |kind: u32, vlen: u32, kflag: bool| (kind << 24) | vlen | ((kflag as u32) << 31);
    // 1: int, 2: char, 3: char[16], 4: struct task_struct, 5: struct task_struct *, 6: uint
    types.extend([int, info(1, 0, false), 4, (1 << 24) | 32]);
    types.extend([char_, info(1, 0, false), 1, (1 << 24) | 8]);
    types.extend([0, info(3, 0, false), 0, 2, 1, 16]);
    types.extend([task, info(4, 4, true), 40]);
    types.extend([pid, 1, 0]);
    types.extend([comm, 3, 32]);
    types.extend([parent, 5, 192]);
    types.extend([flags, 6, (3 << 24) | (256 + 5)]);
    types.extend([0, info(2, 0, false), 4]);
    types.extend([uint, info(1, 0, false), 4, 32]);
    let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
    for w in [
        24u32,
        0,
        type_bytes.len() as u32,
        type_bytes.len() as u32,
        strings.len() as u32,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&type_bytes);
    out.extend_from_slice(&strings);
    out
}
