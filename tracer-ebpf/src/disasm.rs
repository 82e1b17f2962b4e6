//! A disassembler printing instructions the way the kernel verifier's log does
//! (`kernel/bpf/disasm.c`), without the opcode column: `r1 = *(u64 *)(r10 -8)`,
//! `if r1 != 0x0 goto +3`, `call 1`, `r1 = map[events]`, `exit`.
//!
//! Every line starts with the instruction index as the verifier numbers it (an `LD_IMM64`
//! takes two slots, so the line after it is numbered two higher). Used for golden tests and
//! for showing code next to verifier diagnostics.

use crate::insn::*;
use std::fmt::Write;

/// Disassemble `insns`, one line per instruction (an `LD_IMM64` pair is one line).
pub fn disassemble(insns: &[Insn]) -> String {
    disassemble_with(insns, |_| None)
}

/// Like [`disassemble`], naming the map an `LD_IMM64` loads: `map_name(insn_index)` returns
/// the map's name for a relocated map load (e.g. from `ProgramCode::map_relocs`).
pub fn disassemble_with(insns: &[Insn], map_name: impl Fn(usize) -> Option<String>) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = &insns[i];
        let text = if insn.is_ld_imm64() {
            let next = insns.get(i + 1);
            let t = ld_imm64(insn, next, map_name(i));
            i += 1;
            t
        } else {
            one(insn)
        };
        let _ = writeln!(out, "{:>4}: {}", i - usize::from(insn.is_ld_imm64()), text);
        i += 1;
    }
    out
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        BPF_B => "u8",
        BPF_H => "u16",
        BPF_W => "u32",
        _ => "u64",
    }
}

fn reg(r: u8, wide: bool) -> String {
    format!("{}{}", if wide { 'r' } else { 'w' }, r)
}

fn mem(code: u8, base: u8, off: i16) -> String {
    format!("*({} *)(r{} {:+})", size_name(code), base, off)
}

fn ld_imm64(insn: &Insn, next: Option<&Insn>, map: Option<String>) -> String {
    let hi = next.map_or(0, |n| n.imm as u32 as u64);
    let imm = (insn.imm as u32 as u64) | (hi << 32);
    match insn.src {
        BPF_PSEUDO_MAP_FD => match map {
            Some(name) => format!("r{} = map[{}]", insn.dst, name),
            None => format!("r{} = map[fd:{}]", insn.dst, insn.imm),
        },
        2 => format!("r{} = map[fd:{}][0]+{}", insn.dst, insn.imm, hi),
        0 => format!("r{} = {:#x} ll", insn.dst, imm),
        src => format!("r{} = ld_imm64 src={} {:#x}", insn.dst, src, imm),
    }
}

fn alu(insn: &Insn) -> String {
    let wide = insn.code & 0x07 == BPF_ALU64;
    let dst = reg(insn.dst, wide);
    let by_reg = insn.code & BPF_X != 0;
    let src = if by_reg {
        reg(insn.src, wide)
    } else {
        format!("{}", insn.imm)
    };
    let op = insn.code & 0xf0;
    let signed = insn.off == 1;
    match op {
        0x80 => format!("{dst} = -{dst}"),
        0xd0 => {
            // BPF_END: BPF_X = to big endian, BPF_K = to little endian; ALU64 = bswap.
            // The kernel prints r-registers here even in the ALU32 class.
            let kind = if wide {
                "bswap"
            } else if by_reg {
                "be"
            } else {
                "le"
            };
            format!("r{d} = {kind}{} r{d}", insn.imm, d = insn.dst)
        }
        0xb0 if by_reg && matches!(insn.off, 8 | 16 | 32) => {
            format!("{dst} = (s{}){src}", insn.off)
        }
        _ => {
            let sym = match op {
                0x00 => "+=",
                0x10 => "-=",
                0x20 => "*=",
                0x30 if signed => "s/=",
                0x30 => "/=",
                0x40 => "|=",
                0x50 => "&=",
                0x60 => "<<=",
                0x70 => ">>=",
                0x90 if signed => "s%=",
                0x90 => "%=",
                0xa0 => "^=",
                0xb0 => "=",
                0xc0 => "s>>=",
                _ => return invalid(insn),
            };
            format!("{dst} {sym} {src}")
        }
    }
}

fn jmp(insn: &Insn) -> String {
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    match op {
        0x00 if class == BPF_JMP32 => format!("gotol {:+}", insn.imm),
        0x00 => format!("goto {:+}", insn.off),
        0x80 if insn.src == BPF_PSEUDO_CALL => format!("call pc{:+}", insn.imm),
        0x80 if insn.src == 2 => format!("call kfunc#{}", insn.imm),
        0x80 => format!("call {}", insn.imm),
        0x90 => "exit".to_string(),
        _ => {
            let sym = match op {
                0x10 => "==",
                0x20 => ">",
                0x30 => ">=",
                0x40 => "&",
                0x50 => "!=",
                0x60 => "s>",
                0x70 => "s>=",
                0xa0 => "<",
                0xb0 => "<=",
                0xc0 => "s<",
                0xd0 => "s<=",
                _ => return invalid(insn),
            };
            let wide = class == BPF_JMP;
            let src = if insn.code & BPF_X != 0 {
                reg(insn.src, wide)
            } else {
                format!("{:#x}", insn.imm)
            };
            format!(
                "if {} {} {} goto {:+}",
                reg(insn.dst, wide),
                sym,
                src,
                insn.off
            )
        }
    }
}

fn atomic(insn: &Insn) -> String {
    let m = mem(insn.code, insn.dst, insn.off);
    let wide = insn.code & 0x18 == BPF_DW;
    let src = reg(insn.src, wide);
    let bits = if wide { "64" } else { "" };
    let fetch = insn.imm & 0x01 != 0;
    let (name, sym) = match insn.imm & !0x01 {
        0x00 => ("add", "+="),
        0x40 => ("or", "|="),
        0x50 => ("and", "&="),
        0xa0 => ("xor", "^="),
        _ => ("", ""),
    };
    match insn.imm {
        0xe1 => format!(
            "{src} = atomic{bits}_xchg(({} *)(r{} {:+}), {src})",
            size_name(insn.code),
            insn.dst,
            insn.off
        ),
        0xf1 => format!(
            "r0 = atomic{bits}_cmpxchg(({} *)(r{} {:+}), r0, {src})",
            size_name(insn.code),
            insn.dst,
            insn.off
        ),
        _ if name.is_empty() => invalid(insn),
        _ if fetch => format!(
            "{src} = atomic{bits}_fetch_{name}(({} *)(r{} {:+}), {src})",
            size_name(insn.code),
            insn.dst,
            insn.off
        ),
        _ => format!("lock {m} {sym} {src}"),
    }
}

fn one(insn: &Insn) -> String {
    let mode = insn.code & 0xe0;
    match insn.code & 0x07 {
        BPF_ALU | BPF_ALU64 => alu(insn),
        BPF_JMP | BPF_JMP32 => jmp(insn),
        BPF_LDX if mode == BPF_MEM => {
            format!("r{} = {}", insn.dst, mem(insn.code, insn.src, insn.off))
        }
        // BPF_MEMSX: sign-extending load.
        BPF_LDX if mode == 0x80 => {
            let m = mem(insn.code, insn.src, insn.off).replacen("*(u", "*(s", 1);
            format!("r{} = {}", insn.dst, m)
        }
        BPF_STX if mode == BPF_MEM => {
            format!("{} = r{}", mem(insn.code, insn.dst, insn.off), insn.src)
        }
        BPF_STX if mode == BPF_ATOMIC => atomic(insn),
        BPF_ST if mode == BPF_MEM => {
            format!("{} = {}", mem(insn.code, insn.dst, insn.off), insn.imm)
        }
        // Legacy packet loads.
        BPF_LD if mode == 0x20 || mode == 0x40 => {
            let src = if mode == 0x40 {
                format!("r{} + ", insn.src)
            } else {
                String::new()
            };
            format!("r0 = *({} *)skb[{}{}]", size_name(insn.code), src, insn.imm)
        }
        _ => invalid(insn),
    }
}

fn invalid(insn: &Insn) -> String {
    let b = insn.encode();
    format!(
        ".insn {:02x} {:02x} {:02x}{:02x} {:#x}",
        b[0], b[1], b[2], b[3], insn.imm
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_the_verifier() {
        let mut v = vec![
            Insn::ldx(Size::DW, Reg::R1, Reg::FP, -8),
            Insn::jmp_imm(JmpOp::Jne, Reg::R1, 0, 3),
            Insn::call(helper::MAP_LOOKUP_ELEM),
        ];
        v.extend(Insn::ld_map_fd(Reg::R1));
        v.extend(Insn::ld_imm64(Reg::R2, 0x1_0000_0002));
        v.extend([
            Insn::stx(Size::W, Reg::FP, -16, Reg::R3),
            Insn::st_imm(Size::B, Reg::R1, 4, -1),
            Insn::alu64_imm(AluOp::Add, Reg::R2, -4),
            Insn::alu32_reg(AluOp::Xor, Reg::R4, Reg::R5),
            Insn::mov64_reg(Reg::R6, Reg::R1),
            Insn::alu64_imm(AluOp::Neg, Reg::R7, 0),
            Insn::to_be(Reg::R3, 16),
            Insn::atomic_add64(Reg::R0, 0, Reg::R1),
            Insn::atomic_xchg64(Reg::R2, 8, Reg::R3),
            Insn::jmp_reg(JmpOp::Jsge, Reg::R1, Reg::R2, -5),
            Insn::ja(2),
            Insn::exit(),
        ]);
        let got = disassemble_with(&v, |i| (i == 3).then(|| "events".to_string()));
        let want = "   0: r1 = *(u64 *)(r10 -8)
   1: if r1 != 0x0 goto +3
   2: call 1
   3: r1 = map[events]
   5: r2 = 0x100000002 ll
   7: *(u32 *)(r10 -16) = r3
   8: *(u8 *)(r1 +4) = -1
   9: r2 += -4
  10: w4 ^= w5
  11: r6 = r1
  12: r7 = -r7
  13: r3 = be16 r3
  14: lock *(u64 *)(r0 +0) += r1
  15: r3 = atomic64_xchg((u64 *)(r2 +8), r3)
  16: if r1 s>= r2 goto -5
  17: goto +2
  18: exit
";
        assert_eq!(got, want);
        assert_eq!(
            disassemble(&Insn::ld_map_fd(Reg::R1)),
            "   0: r1 = map[fd:0]\n"
        );
    }

    #[test]
    fn unknown_opcodes_do_not_panic() {
        let bad = Insn {
            code: 0xff,
            dst: 1,
            src: 2,
            off: 3,
            imm: 4,
        };
        assert!(disassemble(&[bad]).starts_with("   0: .insn ff"));
        // A truncated LD_IMM64 at the end is still printed.
        assert_eq!(
            disassemble(&Insn::ld_imm64(Reg::R1, 5)[..1]),
            "   0: r1 = 0x5 ll\n"
        );
    }
}
