//! A function's instructions: where each starts (an offset probe must be at one, since a
//! uprobe's breakpoint in the middle of an instruction corrupts the program) and which of
//! them return (a return probe on return instructions, for Go, whose stack walker a
//! uretprobe's rewritten return address kills).
//!
//! x86-64 is decoded with iced-x86, linearly from the function's first byte to its last: the
//! decode must cover the function exactly, with no invalid opcode, or nothing is probed.
//! aarch64 instructions are 4-byte words, told apart by masks (linux `asm/insn.h`).

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};

/// The instruction set of the code being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    X86_64,
    Aarch64,
}

impl Isa {
    /// The instruction set of an ELF file's machine, when tracer decodes it.
    pub fn of(arch: object::Architecture) -> Option<Isa> {
        match arch {
            object::Architecture::X86_64 => Some(Isa::X86_64),
            object::Architecture::Aarch64 => Some(Isa::Aarch64),
            _ => None,
        }
    }
}

/// What decoding one function found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Insns {
    /// The offset of every instruction, ascending.
    pub bounds: Vec<u64>,
    /// Return sites: return instructions and unconditional jumps whose target is outside the
    /// function (a tail call returns to our caller, so DTrace counts it as a return).
    pub returns: Vec<u64>,
    /// Conditional jumps out of the function (conditional tail calls): a probe on one would
    /// fire whether or not it is taken, so such a function gets no return probes.
    pub conditional_exits: Vec<u64>,
    /// Offsets of indirect jumps (`jmp *%rax`, `BR Xn`): a jump table or an indirect tail
    /// call, which cannot be told apart, so the function's returns are uncertain.
    pub indirect: Vec<u64>,
    /// Direct jumps that stay inside the function: (offset, target, unconditional).
    pub jumps: Vec<(u64, u64, bool)>,
    /// Offsets of direct calls.
    pub calls: Vec<u64>,
}

impl Insns {
    /// Whether `off` starts an instruction.
    pub fn is_boundary(&self, off: u64) -> bool {
        self.bounds.binary_search(&off).is_ok()
    }

    /// The boundaries either side of `off` (for an error naming them).
    pub fn around(&self, off: u64) -> (Option<u64>, Option<u64>) {
        let i = self.bounds.partition_point(|&b| b < off);
        let before = i.checked_sub(1).map(|j| self.bounds[j]);
        (before, self.bounds.get(i).copied())
    }

    /// In a Go function, the instruction after its stack-bound check, when it has one: the
    /// prologue compares SP with the goroutine's stack guard and, when the stack must grow,
    /// branches to a block that calls runtime.morestack and jumps back to the first
    /// instruction. An entry probe there fires once per call, not again after each growth;
    /// the check reads no argument register (x86-64: SP or R12 against 16(R14); arm64: R16 or
    /// R17 against SP), so the arguments are where they were at the entry.
    pub fn after_stack_check(&self) -> Option<u64> {
        // A huge frame's prologue checks for wrap-around first and the guard next, both
        // branching to the same block: the probe goes after the last of them.
        let early = self.bounds.get(6).copied().unwrap_or(u64::MAX);
        let at = self
            .jumps
            .iter()
            .filter(|&&(at, target, uncond)| !uncond && at < early && target > at)
            .filter(|&&(_, target, _)| self.grows_and_retries(target))
            .map(|&(at, _, _)| at)
            .max()?;
        self.bounds
            .get(self.bounds.binary_search(&at).ok()? + 1)
            .copied()
    }

    /// Whether the code from `block` calls something (runtime.morestack) and then jumps
    /// back to the function's first instruction.
    fn grows_and_retries(&self, block: u64) -> bool {
        self.jumps.iter().any(|&(from, to, uncond)| {
            uncond && to == 0 && from > block && self.calls.iter().any(|&c| block <= c && c < from)
        })
    }
}

/// Decode `code`, a whole function.
pub fn decode(isa: Isa, code: &[u8]) -> Result<Insns, String> {
    if code.is_empty() {
        return Err("its size is unknown".into());
    }
    match isa {
        Isa::X86_64 => decode_x86(code),
        Isa::Aarch64 => decode_a64(code),
    }
}

fn decode_x86(code: &[u8]) -> Result<Insns, String> {
    let len = code.len() as u64;
    let mut out = Insns::default();
    let mut d = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut i = Instruction::default();
    while d.can_decode() {
        d.decode_out(&mut i);
        let at = i.ip();
        // A truncated last instruction decodes as INVALID too: the size is then wrong.
        if i.code() == Code::INVALID {
            return Err(format!("no valid instruction at offset 0x{at:x}"));
        }
        out.bounds.push(at);
        match i.mnemonic() {
            // C3, C2 iw, and F3 C3 (the prefix is part of the instruction, so the probe is
            // on the F3 as DTrace puts it).
            Mnemonic::Ret => out.returns.push(at),
            Mnemonic::Call => {
                if matches!(
                    i.op0_kind(),
                    OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16
                ) {
                    out.calls.push(at)
                }
            }
            _ => match i.op0_kind() {
                // A jmp or jcc leaving the function is a tail call; one to the entry (Go's
                // morestack path jumps back to the start) stays inside.
                OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16
                    if i.near_branch_target() >= len && is_jump(i.mnemonic()) =>
                {
                    if i.mnemonic() == Mnemonic::Jmp {
                        out.returns.push(at)
                    } else {
                        out.conditional_exits.push(at)
                    }
                }
                OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16
                    if is_jump(i.mnemonic()) =>
                {
                    let uncond = i.mnemonic() == Mnemonic::Jmp;
                    out.jumps.push((at, i.near_branch_target(), uncond))
                }
                OpKind::Register | OpKind::Memory if i.mnemonic() == Mnemonic::Jmp => {
                    out.indirect.push(at)
                }
                _ => {}
            },
        }
    }
    Ok(out)
}

/// Jumps (unconditional, conditional, loop and jrcxz), as opposed to calls.
fn is_jump(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Jmp | Ja
            | Jae
            | Jb
            | Jbe
            | Je
            | Jg
            | Jge
            | Jl
            | Jle
            | Jne
            | Jno
            | Jnp
            | Jns
            | Jo
            | Jp
            | Js
            | Jcxz
            | Jecxz
            | Jrcxz
            | Loop
            | Loope
            | Loopne
    )
}

/// The branch target of an aarch64 direct branch at `at`, when `insn` is one.
fn a64_target(insn: u32, at: u64) -> Option<i64> {
    let sext = |v: u32, bits: u32| ((v << (32 - bits)) as i32 >> (32 - bits)) as i64;
    let off = if insn & 0xFC00_0000 == 0x1400_0000 {
        // B imm26
        sext(insn & 0x03FF_FFFF, 26)
    } else if insn & 0xFF00_0010 == 0x5400_0000 || insn & 0x7E00_0000 == 0x3400_0000 {
        // B.cond / CBZ / CBNZ imm19
        sext((insn >> 5) & 0x7_FFFF, 19)
    } else if insn & 0x7E00_0000 == 0x3600_0000 {
        // TBZ / TBNZ imm14
        sext((insn >> 5) & 0x3FFF, 14)
    } else {
        return None;
    };
    Some(at as i64 + off * 4)
}

fn decode_a64(code: &[u8]) -> Result<Insns, String> {
    if !code.len().is_multiple_of(4) {
        return Err(format!(
            "its size ({} bytes) is not a whole number of instructions",
            code.len()
        ));
    }
    let len = code.len() as i64;
    let mut out = Insns::default();
    for (k, w) in code.chunks_exact(4).enumerate() {
        let at = 4 * k as u64;
        let insn = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        out.bounds.push(at);
        let ret = insn & 0xFFFF_FC1F == 0xD65F_0000 || insn & 0xFFFF_FBFF == 0xD65F_0BFF;
        if ret {
            out.returns.push(at);
        } else if insn & 0xFFFF_FC1F == 0xD61F_0000 {
            out.indirect.push(at);
        } else if insn & 0xFC00_0000 == 0x9400_0000 {
            // BL
            out.calls.push(at);
        } else if let Some(t) = a64_target(insn, at) {
            let uncond = insn & 0xFC00_0000 == 0x1400_0000;
            if (0..len).contains(&t) {
                out.jumps.push((at, t as u64, uncond));
            } else if uncond {
                out.returns.push(at);
            } else {
                out.conditional_exits.push(at);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_boundaries_and_returns() {
        // push rbp; mov rbp,rsp; mov eax,1; pop rbp; ret; rep ret; ret 8
        let code = [
            0x55, 0x48, 0x89, 0xe5, 0xb8, 1, 0, 0, 0, 0x5d, 0xc3, 0xf3, 0xc3, 0xc2, 8, 0,
        ];
        let d = decode(Isa::X86_64, &code).unwrap();
        assert_eq!(d.bounds, vec![0, 1, 4, 9, 10, 11, 13]);
        assert_eq!(d.returns, vec![10, 11, 13]);
        assert!(d.indirect.is_empty());
        assert!(d.is_boundary(4) && !d.is_boundary(3));
        assert_eq!(d.around(3), (Some(1), Some(4)));
        assert_eq!(d.around(20), (Some(13), None));
    }

    #[test]
    fn x86_tail_jumps_leave_the_function() {
        // 0: je +2 (to 4, inside); 2: jmp -4 (to 0, inside: morestack's retry);
        // 4: jne rel8 out; 6: jmp rel32 out; 11: jmp *%rax; 13: call rel32 (not a return)
        let code = [
            0x74, 0x02, 0xeb, 0xfc, 0x75, 0x40, 0xe9, 0, 1, 0, 0, 0xff, 0xe0, 0xe8, 0, 0, 0, 0,
        ];
        let d = decode(Isa::X86_64, &code).unwrap();
        assert_eq!(d.bounds, vec![0, 2, 4, 6, 11, 13]);
        assert_eq!(d.returns, vec![6]);
        assert_eq!(d.conditional_exits, vec![4]);
        assert_eq!(d.indirect, vec![11]);
    }

    #[test]
    fn x86_truncated_or_invalid_code_is_refused() {
        // mov eax, imm32 cut short
        assert!(decode(Isa::X86_64, &[0xb8, 1, 0]).is_err());
        // 0x06 (push es) is invalid in 64-bit mode
        let e = decode(Isa::X86_64, &[0x90, 0x06]).unwrap_err();
        assert!(e.contains("0x1"), "{e}");
        assert!(decode(Isa::X86_64, &[]).is_err());
    }

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn aarch64_returns_and_tail_branches() {
        let code = words(&[
            0xd503201f, // 0: nop
            0x54000040, // 4: b.eq +8 (12, inside)
            0x14000010, // 8: b +64 (out: a tail call)
            0xd65f03c0, // 12: ret
            0xd65f0bff, // 16: retaa
            0xd61f0200, // 20: br x16
            0x17fffffa, // 24: b -24 (0, the entry: inside)
            0xb4ffff20, // 28: cbz x0, -28 (0, inside)
            0x97ffffff, // 32: bl -4 (a call)
        ]);
        let d = decode(Isa::Aarch64, &code).unwrap();
        assert_eq!(d.bounds, (0..9).map(|k| 4 * k).collect::<Vec<u64>>());
        assert_eq!(d.returns, vec![8, 12, 16]);
        assert!(d.conditional_exits.is_empty());
        assert_eq!(d.indirect, vec![20]);
        assert!(decode(Isa::Aarch64, &[0xc0, 0x03, 0x5f]).is_err());
    }

    #[test]
    fn go_stack_checks_are_found() {
        // Go 1.19 amd64 main.handle: 0: cmp rsp,[r14+0x10]; 4: jbe 12; 6: push rbp;
        // 7: mov rbp,rsp; 10: pop rbp; 11: ret; 12: call (morestack); 17: jmp 0
        let code = [
            0x49, 0x3b, 0x66, 0x10, 0x76, 0x06, 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3, 0xe8, 0, 0, 0,
            0, 0xeb, 0xed,
        ];
        let d = decode(Isa::X86_64, &code).unwrap();
        assert_eq!(d.after_stack_check(), Some(6));
        // A huge frame's wrap-around check (jb) before the guard check: after the last.
        let huge = [
            0x49, 0x89, 0xe4, 0x72, 0x09, 0x4d, 0x3b, 0x66, 0x10, 0x76, 0x03, 0x55, 0x5d, 0xc3,
            0xe8, 0, 0, 0, 0, 0xeb, 0xeb,
        ];
        // 0: mov r12,rsp; 3: jb 14; 5: cmp r12,[r14+0x10]; 9: jbe 14; 11: push rbp; 12: pop rbp;
        // 13: ret; 14: call; 19: jmp 0
        let d = decode(Isa::X86_64, &huge).unwrap();
        assert_eq!(d.after_stack_check(), Some(11));
        // Without the jump back to the entry, the branch is ordinary code.
        let mut plain = code;
        plain[18] = 0x00; // jmp +0 (to 19, the end)
        assert_eq!(
            decode(Isa::X86_64, &plain).unwrap().after_stack_check(),
            None
        );
        // arm64: 0: ldr x16,[x28,#16]; 4: cmp sp,x16; 8: b.ls 20; 12: ret; 16: nop;
        // 20: bl (morestack); 24: b 0
        let code = words(&[
            0xf9400b90, 0xeb3063ff, 0x54000069, 0xd65f03c0, 0xd503201f, 0x97ffffff, 0x17fffffa,
        ]);
        let d = decode(Isa::Aarch64, &code).unwrap();
        assert_eq!(d.after_stack_check(), Some(12));
    }
}
