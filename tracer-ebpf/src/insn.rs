//! eBPF instruction encoding (the 8-byte format of `struct bpf_insn`).
//!
//! `code:u8`, `dst:4 | src:4` (dst in the low nibble), `off:i16`, `imm:i32`. `LD_IMM64` takes
//! two slots. Nothing here knows about D: it is the kernel's instruction set, nothing more.

/// A machine register r0..r10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u8);

impl Reg {
    pub const R0: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);
    pub const R5: Reg = Reg(5);
    pub const R6: Reg = Reg(6);
    pub const R7: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    /// The read-only frame pointer.
    pub const FP: Reg = Reg(10);
}

// Instruction classes.
pub const BPF_LD: u8 = 0x00;
pub const BPF_LDX: u8 = 0x01;
pub const BPF_ST: u8 = 0x02;
pub const BPF_STX: u8 = 0x03;
pub const BPF_ALU: u8 = 0x04;
pub const BPF_JMP: u8 = 0x05;
pub const BPF_JMP32: u8 = 0x06;
pub const BPF_ALU64: u8 = 0x07;

// Sizes.
pub const BPF_W: u8 = 0x00;
pub const BPF_H: u8 = 0x08;
pub const BPF_B: u8 = 0x10;
pub const BPF_DW: u8 = 0x18;

// Modes.
pub const BPF_IMM: u8 = 0x00;
pub const BPF_MEM: u8 = 0x60;
pub const BPF_ATOMIC: u8 = 0xc0;

// Sources.
pub const BPF_K: u8 = 0x00;
pub const BPF_X: u8 = 0x08;

/// `src_reg` of an LD_IMM64 that loads a map fd (set by the loader from the relocation).
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of a call to a bpf-to-bpf function.
pub const BPF_PSEUDO_CALL: u8 = 1;

/// ALU operations (upper nibble of the opcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AluOp {
    Add = 0x00,
    Sub = 0x10,
    Mul = 0x20,
    Div = 0x30,
    Or = 0x40,
    And = 0x50,
    Lsh = 0x60,
    Rsh = 0x70,
    Neg = 0x80,
    Mod = 0x90,
    Xor = 0xa0,
    Mov = 0xb0,
    Arsh = 0xc0,
}

/// Jump conditions (upper nibble of the opcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum JmpOp {
    Ja = 0x00,
    Jeq = 0x10,
    Jgt = 0x20,
    Jge = 0x30,
    Jset = 0x40,
    Jne = 0x50,
    Jsgt = 0x60,
    Jsge = 0x70,
    Call = 0x80,
    Exit = 0x90,
    Jlt = 0xa0,
    Jle = 0xb0,
    Jslt = 0xc0,
    Jsle = 0xd0,
}

impl JmpOp {
    /// The condition that holds exactly when `self` does not.
    pub fn negate(self) -> JmpOp {
        use JmpOp::*;
        match self {
            Jeq => Jne,
            Jne => Jeq,
            Jgt => Jle,
            Jle => Jgt,
            Jge => Jlt,
            Jlt => Jge,
            Jsgt => Jsle,
            Jsle => Jsgt,
            Jsge => Jslt,
            Jslt => Jsge,
            other => other,
        }
    }
}

/// Memory access width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub fn bits(self) -> u8 {
        match self {
            Size::B => BPF_B,
            Size::H => BPF_H,
            Size::W => BPF_W,
            Size::DW => BPF_DW,
        }
    }
    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
    pub fn from_bytes(n: u32) -> Option<Size> {
        Some(match n {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            8 => Size::DW,
            _ => return None,
        })
    }
}

/// One 8-byte instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0x0f) | (self.src << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst: dst.0,
            src: src.0,
            off,
            imm,
        }
    }

    pub fn alu64_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::new(BPF_ALU64 | op as u8 | BPF_X, dst, src, 0, 0)
    }
    pub fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | op as u8 | BPF_K, dst, Reg(0), 0, imm)
    }
    pub fn alu32_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        Insn::new(BPF_ALU | op as u8 | BPF_X, dst, src, 0, 0)
    }
    pub fn alu32_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(BPF_ALU | op as u8 | BPF_K, dst, Reg(0), 0, imm)
    }
    pub fn mov64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu64_reg(AluOp::Mov, dst, src)
    }
    pub fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(AluOp::Mov, dst, imm)
    }
    /// Byte swap to big endian (`be16/be32/be64`), for htons and friends.
    pub fn to_be(dst: Reg, bits: i32) -> Insn {
        Insn::new(BPF_ALU | 0xd0 | BPF_X, dst, Reg(0), 0, bits)
    }
    /// The two slots of `dst = imm64`.
    pub fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
        [
            Insn::new(BPF_LD | BPF_DW | BPF_IMM, dst, Reg(0), 0, imm as u32 as i32),
            Insn::new(0, Reg(0), Reg(0), 0, (imm >> 32) as u32 as i32),
        ]
    }
    /// `dst = map` placeholder; the ELF writer adds an R_BPF_64_64 relocation on the first slot.
    pub fn ld_map_fd(dst: Reg) -> [Insn; 2] {
        let mut i = Insn::ld_imm64(dst, 0);
        i[0].src = BPF_PSEUDO_MAP_FD;
        i
    }
    pub fn ldx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | size.bits(), dst, src, off, 0)
    }
    pub fn stx(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
        Insn::new(BPF_STX | BPF_MEM | size.bits(), dst, src, off, 0)
    }
    pub fn st_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::new(BPF_ST | BPF_MEM | size.bits(), dst, Reg(0), off, imm)
    }
    /// `lock *(dst + off) += src` (64-bit).
    pub fn atomic_add64(dst: Reg, off: i16, src: Reg) -> Insn {
        Insn::new(
            BPF_STX | BPF_ATOMIC | BPF_DW,
            dst,
            src,
            off,
            AluOp::Add as i32,
        )
    }
    /// `src = atomic_fetch_add((u64 *)(dst + off), src)`: BPF_FETCH, Linux 5.12+.
    pub fn atomic_fetch_add64(dst: Reg, off: i16, src: Reg) -> Insn {
        const BPF_FETCH: i32 = 0x01;
        Insn::new(
            BPF_STX | BPF_ATOMIC | BPF_DW,
            dst,
            src,
            off,
            AluOp::Add as i32 | BPF_FETCH,
        )
    }
    /// `src = xchg((u64 *)(dst + off), src)`: BPF_XCHG, Linux 5.12+.
    pub fn atomic_xchg64(dst: Reg, off: i16, src: Reg) -> Insn {
        const BPF_XCHG: i32 = 0xe0 | 0x01;
        Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, dst, src, off, BPF_XCHG)
    }
    /// `r0 = cmpxchg((u64 *)(dst + off), r0, src)`: stores `src` if the word equals r0;
    /// r0 gets the word it found either way (BPF_CMPXCHG, Linux 5.12+).
    pub fn atomic_cmpxchg64(dst: Reg, off: i16, src: Reg) -> Insn {
        const BPF_CMPXCHG: i32 = 0xf0 | 0x01;
        Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, dst, src, off, BPF_CMPXCHG)
    }
    pub fn jmp_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(BPF_JMP | op as u8 | BPF_X, dst, src, off, 0)
    }
    pub fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | op as u8 | BPF_K, dst, Reg(0), off, imm)
    }
    pub fn ja(off: i16) -> Insn {
        Insn::new(BPF_JMP | JmpOp::Ja as u8, Reg(0), Reg(0), off, 0)
    }
    pub fn call(helper: i32) -> Insn {
        Insn::new(BPF_JMP | JmpOp::Call as u8, Reg(0), Reg(0), 0, helper)
    }
    pub fn exit() -> Insn {
        Insn::new(BPF_JMP | JmpOp::Exit as u8, Reg(0), Reg(0), 0, 0)
    }

    /// True for the first slot of an LD_IMM64.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == BPF_LD | BPF_DW | BPF_IMM
    }
}

/// Kernel helper ids (`enum bpf_func_id`) that tracer calls.
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const PROBE_READ: i32 = 4;
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_PRANDOM_U32: i32 = 7;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const PERF_EVENT_OUTPUT: i32 = 25;
    pub const GET_STACKID: i32 = 27;
    pub const GET_CURRENT_TASK: i32 = 35;
    pub const PROBE_READ_STR: i32 = 45;
    pub const SEND_SIGNAL: i32 = 109;
    pub const GET_STACK: i32 = 67;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const RINGBUF_OUTPUT: i32 = 130;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const GET_NS_CURRENT_PID_TGID: i32 = 120;
    pub const GET_CURRENT_CGROUP_ID: i32 = 80;
    pub const KTIME_GET_TAI_NS: i32 = 208;
    pub const GET_FUNC_IP: i32 = 173;
    pub const GET_ATTACH_COOKIE: i32 = 174;
}

/// Map types tracer creates (`enum bpf_map_type`).
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const RINGBUF: u32 = 27;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel() {
        // r0 = 42; exit  →  b7 00 00 00 2a 00 00 00 / 95 00 00 00 00 00 00 00
        assert_eq!(
            Insn::mov64_imm(Reg::R0, 42).encode(),
            [0xb7, 0, 0, 0, 42, 0, 0, 0]
        );
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // *(u64 *)(r10 - 8) = r1  →  7b 1a f8 ff 00 00 00 00
        assert_eq!(
            Insn::stx(Size::DW, Reg::FP, -8, Reg::R1).encode(),
            [0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0]
        );
        let i = Insn::jmp_imm(JmpOp::Jne, Reg::R3, -1, 7);
        assert_eq!(Insn::decode(&i.encode()), i);
    }
}
