//! What the kernel counts about a loaded program that the program cannot see itself.
//!
//! The kernel skips a tracepoint, kprobe or perf-event program, silently, when another eBPF
//! program (or a bpf() map call from userspace, which holds the same per-CPU guard) is in
//! progress on that CPU. On preemptible kernels that window can be long. `recursion_misses`
//! (Linux 5.12+) counts those skipped firings, so tracer can report them as drops.

use std::os::fd::RawFd;

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
/// `struct bpf_prog_info` up to and including `recursion_misses` (offset 208).
const INFO_LEN: usize = 216;
const RECURSION_MISSES: usize = 208;

/// The program's count of firings the kernel skipped; 0 where the kernel does not count them.
pub fn recursion_misses(prog_fd: RawFd) -> u64 {
    let mut info = [0u8; INFO_LEN];
    // union bpf_attr.info: bpf_fd (u32), info_len (u32), info (u64).
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&(prog_fd as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(INFO_LEN as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    // SAFETY: `attr` is a bpf_attr for this command and `info` outlives the call; the kernel
    // writes into both (the filled length into `attr`).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            attr.as_mut_ptr(),
            attr.len() as u32,
        )
    };
    if r < 0 {
        return 0;
    }
    // The kernel writes back how much it filled: older kernels stop before the field.
    let filled = u32::from_ne_bytes(attr[4..8].try_into().unwrap()) as usize;
    if filled < RECURSION_MISSES + 8 {
        return 0;
    }
    u64::from_ne_bytes(
        info[RECURSION_MISSES..RECURSION_MISSES + 8]
            .try_into()
            .unwrap(),
    )
}
