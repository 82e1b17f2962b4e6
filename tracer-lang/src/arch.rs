//! Per-architecture facts the compiler needs: `struct pt_regs` offsets.

/// Offset of the instruction pointer in `struct pt_regs` (also the start of
/// `bpf_perf_event_data`).
#[cfg(target_arch = "x86_64")]
pub const PT_REGS_IP: i16 = 16 * 8;
#[cfg(target_arch = "aarch64")]
pub const PT_REGS_IP: i16 = 32 * 8;

/// Offset of the return-value register.
#[cfg(target_arch = "x86_64")]
pub const PT_REGS_RET: Option<i16> = Some(10 * 8); // rax
#[cfg(target_arch = "aarch64")]
pub const PT_REGS_RET: Option<i16> = Some(0); // x0

/// Offset of function argument `i` (System V / AAPCS64 calling conventions).
#[cfg(target_arch = "x86_64")]
pub fn pt_regs_arg(i: u32) -> Option<i16> {
    // rdi, rsi, rdx, rcx, r8, r9
    [14, 13, 12, 11, 9, 8].get(i as usize).map(|r| r * 8)
}
#[cfg(target_arch = "aarch64")]
pub fn pt_regs_arg(i: u32) -> Option<i16> {
    if i < 8 {
        Some(i as i16 * 8)
    } else {
        None
    }
}
