//! From allocated IR to eBPF instructions: operand materialisation, spill reloads, call
//! argument shuffling, branch fix-ups, and the expansion of string/memory pseudo-ops.

use crate::insn::{AluOp, Insn, JmpOp, Reg, Size};
use crate::ir::{Function, Inst, Label, MapId, Operand, VReg};
use crate::regalloc::{allocate, Allocation, Loc};
use std::collections::HashMap;

/// A program ready for the ELF writer.
#[derive(Debug, Clone, Default)]
pub struct Emitted {
    pub insns: Vec<Insn>,
    /// (instruction index of an LD_IMM64, map) pairs needing relocation.
    pub map_relocs: Vec<(usize, MapId)>,
    /// (first instruction index, D source line), sorted by index.
    pub lines: Vec<(usize, u32)>,
}

impl Emitted {
    /// The D source line that produced instruction `idx` (for verifier messages).
    pub fn line_of(&self, idx: usize) -> Option<u32> {
        self.lines
            .iter()
            .take_while(|(i, _)| *i <= idx)
            .last()
            .map(|(_, l)| *l)
    }
}

const TMP0: Reg = Reg::R0;
const TMP1: Reg = Reg::R5;

struct Emitter<'a> {
    alloc: &'a Allocation,
    out: Emitted,
    labels: HashMap<Label, usize>,
    fixups: Vec<(usize, Label)>,
}

fn fits_i32(v: i64) -> bool {
    v >= i32::MIN as i64 && v <= i32::MAX as i64
}

impl<'a> Emitter<'a> {
    fn push(&mut self, i: Insn) {
        self.out.insns.push(i);
    }

    fn load_imm(&mut self, r: Reg, v: i64) {
        if fits_i32(v) {
            self.push(Insn::mov64_imm(r, v as i32));
        } else {
            for i in Insn::ld_imm64(r, v as u64) {
                self.push(i);
            }
        }
    }

    /// The register holding `v`, reloading a spilled value into `tmp`.
    fn use_reg(&mut self, v: VReg, tmp: Reg) -> Reg {
        match self.alloc.loc(v) {
            Loc::Reg(r) => r,
            Loc::Spill(off) => {
                self.push(Insn::ldx(Size::DW, tmp, Reg::FP, -(off as i16)));
                tmp
            }
            Loc::Unused => tmp,
        }
    }

    /// Put operand `o` into register `dst`.
    fn operand_into(&mut self, dst: Reg, o: Operand) {
        match o {
            Operand::Imm(v) => self.load_imm(dst, v),
            Operand::Reg(v) => match self.alloc.loc(v) {
                Loc::Reg(r) if r != dst => self.push(Insn::mov64_reg(dst, r)),
                Loc::Reg(_) | Loc::Unused => {}
                Loc::Spill(off) => self.push(Insn::ldx(Size::DW, dst, Reg::FP, -(off as i16))),
            },
        }
    }

    /// The register to compute `v` into; call `finish_def` afterwards.
    fn def_reg(&self, v: VReg) -> Reg {
        match self.alloc.loc(v) {
            Loc::Reg(r) => r,
            _ => TMP0,
        }
    }

    fn finish_def(&mut self, v: VReg, r: Reg) {
        if let Loc::Spill(off) = self.alloc.loc(v) {
            self.push(Insn::stx(Size::DW, Reg::FP, -(off as i16), r));
        }
    }

    /// Move operands into r1.. as a parallel assignment (sources may be among the targets).
    fn shuffle_args(&mut self, args: &[Operand]) {
        let mut moves: Vec<(Reg, Reg)> = Vec::new(); // (dst, src) register moves
        let mut later: Vec<(Reg, Operand)> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            let dst = Reg(i as u8 + 1);
            match a {
                Operand::Reg(v) => match self.alloc.loc(*v) {
                    Loc::Reg(r) if r == dst => {}
                    Loc::Reg(r) => moves.push((dst, r)),
                    _ => later.push((dst, *a)),
                },
                Operand::Imm(_) => later.push((dst, *a)),
            }
        }
        // Sequentialise: emit a move whose destination is no longer needed as a source; break
        // cycles through r0.
        while !moves.is_empty() {
            if let Some(i) =
                (0..moves.len()).find(|&i| !moves.iter().any(|(_, s)| *s == moves[i].0))
            {
                let (d, s) = moves.remove(i);
                self.push(Insn::mov64_reg(d, s));
            } else {
                let (d, s) = moves[0];
                self.push(Insn::mov64_reg(TMP0, s));
                for m in moves.iter_mut() {
                    if m.1 == s {
                        m.1 = TMP0;
                    }
                }
                let _ = d;
            }
        }
        for (dst, o) in later {
            self.operand_into(dst, o);
        }
    }

    fn set_result(&mut self, dst: Option<VReg>) {
        if let Some(d) = dst {
            match self.alloc.loc(d) {
                Loc::Reg(r) => self.push(Insn::mov64_reg(r, Reg::R0)),
                Loc::Spill(off) => self.push(Insn::stx(Size::DW, Reg::FP, -(off as i16), Reg::R0)),
                Loc::Unused => {}
            }
        }
    }

    fn jump_to(&mut self, mut i: Insn, target: Label) {
        self.fixups.push((self.out.insns.len(), target));
        i.off = 0;
        self.push(i);
    }

    fn inst(&mut self, inst: &Inst) {
        match inst {
            Inst::Mov { dst, src } => {
                let d = self.def_reg(*dst);
                if let (Loc::Spill(off), Operand::Imm(v)) = (self.alloc.loc(*dst), src) {
                    if fits_i32(*v) {
                        self.push(Insn::st_imm(Size::DW, Reg::FP, -(off as i16), *v as i32));
                        return;
                    }
                }
                self.operand_into(d, *src);
                self.finish_def(*dst, d);
            }
            Inst::Alu { op, dst, a, b } => {
                let d = self.def_reg(*dst);
                // Materialise b first so that writing a into d cannot destroy it.
                let b_src = match b {
                    Operand::Imm(v) if fits_i32(*v) => None,
                    Operand::Imm(v) => {
                        self.load_imm(TMP1, *v);
                        Some(TMP1)
                    }
                    Operand::Reg(v) => {
                        let r = self.use_reg(*v, TMP1);
                        if r == d && *a != Operand::Reg(*v) {
                            self.push(Insn::mov64_reg(TMP1, r));
                            Some(TMP1)
                        } else {
                            Some(r)
                        }
                    }
                };
                self.operand_into(d, *a);
                match (b_src, b) {
                    (None, Operand::Imm(v)) => self.push(Insn::alu64_imm(*op, d, *v as i32)),
                    (Some(r), _) => self.push(Insn::alu64_reg(*op, d, r)),
                    _ => unreachable!(),
                }
                self.finish_def(*dst, d);
            }
            Inst::Neg { dst, a } => {
                let d = self.def_reg(*dst);
                self.operand_into(d, Operand::Reg(*a));
                self.push(Insn::alu64_imm(AluOp::Neg, d, 0));
                self.finish_def(*dst, d);
            }
            Inst::ToBe { dst, a, bits } => {
                let d = self.def_reg(*dst);
                self.operand_into(d, Operand::Reg(*a));
                self.push(Insn::to_be(d, *bits as i32));
                self.finish_def(*dst, d);
            }
            Inst::Load {
                dst,
                base,
                off,
                size,
            } => {
                let b = self.use_reg(*base, TMP1);
                let d = self.def_reg(*dst);
                self.push(Insn::ldx(*size, d, b, *off));
                self.finish_def(*dst, d);
            }
            Inst::Store {
                base,
                off,
                src,
                size,
            } => {
                let b = self.use_reg(*base, TMP1);
                match src {
                    Operand::Imm(v) if fits_i32(*v) => {
                        self.push(Insn::st_imm(*size, b, *off, *v as i32))
                    }
                    Operand::Imm(v) => {
                        self.load_imm(TMP0, *v);
                        self.push(Insn::stx(*size, b, *off, TMP0));
                    }
                    Operand::Reg(v) => {
                        let s = self.use_reg(*v, TMP0);
                        self.push(Insn::stx(*size, b, *off, s));
                    }
                }
            }
            Inst::AtomicAdd {
                dst,
                base,
                off,
                val,
            } => {
                let b = self.use_reg(*base, TMP0);
                self.operand_into(TMP1, *val);
                match dst {
                    Some(d) => {
                        self.push(Insn::atomic_fetch_add64(b, *off, TMP1));
                        let r = self.def_reg(*d);
                        if r != TMP1 {
                            self.push(Insn::mov64_reg(r, TMP1));
                        }
                        self.finish_def(*d, r);
                    }
                    None => self.push(Insn::atomic_add64(b, *off, TMP1)),
                }
            }
            Inst::AtomicXchg {
                dst,
                base,
                off,
                val,
            } => {
                let b = self.use_reg(*base, TMP0);
                // The old value comes back in the register that carried the new one: use
                // `dst`'s own register for both unless it is the base's.
                let r = match self.alloc.loc(*dst) {
                    Loc::Reg(r) if r != b => r,
                    _ => TMP1,
                };
                self.operand_into(r, *val);
                self.push(Insn::atomic_xchg64(b, *off, r));
                let d = self.def_reg(*dst);
                if d != r {
                    self.push(Insn::mov64_reg(d, r));
                }
                self.finish_def(*dst, d);
            }
            Inst::StackAddr { dst, offset } => {
                let d = self.def_reg(*dst);
                self.push(Insn::mov64_reg(d, Reg::FP));
                self.push(Insn::alu64_imm(AluOp::Add, d, -(*offset as i32)));
                self.finish_def(*dst, d);
            }
            Inst::MapPtr { dst, map } => {
                let d = self.def_reg(*dst);
                self.out.map_relocs.push((self.out.insns.len(), *map));
                for i in Insn::ld_map_fd(d) {
                    self.push(i);
                }
                self.finish_def(*dst, d);
            }
            Inst::Call { helper, args, dst } => {
                self.shuffle_args(args);
                self.push(Insn::call(*helper));
                self.set_result(*dst);
            }
            Inst::Branch { cond, a, b, target } => {
                let ra = self.use_reg(*a, TMP0);
                let i = match b {
                    Operand::Imm(v) if fits_i32(*v) => Insn::jmp_imm(*cond, ra, *v as i32, 0),
                    _ => {
                        let rb = match b {
                            Operand::Reg(v) => self.use_reg(*v, TMP1),
                            Operand::Imm(v) => {
                                self.load_imm(TMP1, *v);
                                TMP1
                            }
                        };
                        Insn::jmp_reg(*cond, ra, rb, 0)
                    }
                };
                self.jump_to(i, *target);
            }
            Inst::Jump(l) => self.jump_to(Insn::ja(0), *l),
            Inst::Label(l) => {
                self.labels.insert(*l, self.out.insns.len());
            }
            Inst::Ret(o) => {
                self.operand_into(Reg::R0, *o);
                self.push(Insn::exit());
            }
            Inst::Line(l) => {
                let at = self.out.insns.len();
                if let Some(last) = self.out.lines.last_mut() {
                    if last.0 == at {
                        last.1 = *l;
                        return;
                    }
                }
                self.out.lines.push((at, *l));
            }
            Inst::MemZero { dst, len } => {
                let r = self.use_reg(*dst, TMP1);
                for off in (0..*len).step_by(8) {
                    self.push(Insn::st_imm(Size::DW, r, off as i16, 0));
                }
            }
            Inst::AtomicMax { base, off, val } => {
                self.shuffle_args(&[Operand::Reg(*base), Operand::Reg(*val)]);
                self.expand_atomic_umax(*off);
            }
            Inst::MemCopy { dst, src, len } => {
                self.shuffle_args(&[Operand::Reg(*dst), Operand::Reg(*src)]);
                for off in (0..*len).step_by(8) {
                    self.push(Insn::ldx(Size::DW, Reg::R0, Reg::R2, off as i16));
                    self.push(Insn::stx(Size::DW, Reg::R1, off as i16, Reg::R0));
                }
            }
            Inst::StrCmp { dst, a, b, max } => {
                self.shuffle_args(&[Operand::Reg(*a), Operand::Reg(*b)]);
                self.expand_strcmp(*max);
                self.set_result(Some(*dst));
            }
            Inst::StrLen { dst, s, max, tmp } => {
                self.shuffle_args(&[Operand::Reg(*s), Operand::Reg(*tmp)]);
                self.save_tmp(Reg::R2);
                self.expand_strlen(*max);
                self.launder();
                self.set_result(Some(*dst));
            }
            Inst::StrChr {
                dst,
                s,
                c,
                max,
                reverse,
                tmp,
            } => {
                self.shuffle_args(&[Operand::Reg(*s), *c, Operand::Reg(*tmp)]);
                self.save_tmp(Reg::R3);
                self.expand_strchr(*max, *reverse);
                self.launder();
                self.set_result(Some(*dst));
            }
            Inst::StrStr {
                dst,
                hay,
                needle,
                start,
                max,
                reverse,
                tmp,
                literal,
            } => {
                self.shuffle_args(&[
                    Operand::Reg(*hay),
                    Operand::Reg(*needle),
                    *start,
                    Operand::Reg(*tmp),
                ]);
                self.save_tmp(Reg::R4);
                match literal {
                    Some(lit) => self.expand_strstr_literal(lit, *max, *reverse),
                    None => self.expand_strstr(*max, *reverse),
                }
                self.launder();
                self.set_result(Some(*dst));
            }
        }
    }

    /// Emit a backward-or-forward jump to an absolute instruction index (used inside
    /// expansions, whose loops are the only back edges).
    fn jmp_abs(&mut self, mut i: Insn, target: usize) {
        let here = self.out.insns.len() as i64;
        i.off = (target as i64 - here - 1) as i16;
        self.push(i);
    }

    /// Placeholder forward jump; patch with `patch_here`.
    fn jmp_fwd(&mut self, i: Insn) -> usize {
        self.push(i);
        self.out.insns.len() - 1
    }

    fn patch_here(&mut self, at: usize) {
        let here = self.out.insns.len();
        self.out.insns[at].off = (here - at - 1) as i16;
    }

    /// r0 = strcmp(r1, r2) over at most `max` bytes. Unrolled: no loop state for the verifier.
    fn expand_strcmp(&mut self, max: u32) {
        let mut exits = Vec::new();
        for i in 0..max as i16 {
            self.push(Insn::ldx(Size::B, Reg::R3, Reg::R1, i));
            self.push(Insn::ldx(Size::B, Reg::R4, Reg::R2, i));
            self.push(Insn::mov64_reg(Reg::R0, Reg::R3));
            self.push(Insn::alu64_reg(AluOp::Sub, Reg::R0, Reg::R4));
            exits.push(self.jmp_fwd(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0)));
            exits.push(self.jmp_fwd(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0)));
        }
        self.push(Insn::mov64_imm(Reg::R0, 0));
        for e in exits {
            self.patch_here(e);
        }
    }

    /// `*(u64 *)(r1 + off) = max(that, r2)`, unsigned: compare-and-exchange until the word
    /// holds r2 or is no longer smaller. A retry means another firing changed the word in
    /// between, having preempted this one on its CPU, so a few tries suffice; 16 bound the
    /// loop for the verifier.
    fn expand_atomic_umax(&mut self, off: i16) {
        self.push(Insn::ldx(Size::DW, Reg::R0, Reg::R1, off));
        self.push(Insn::mov64_imm(Reg::R4, 0));
        let top = self.out.insns.len();
        let done1 = self.jmp_fwd(Insn::jmp_reg(JmpOp::Jle, Reg::R2, Reg::R0, 0));
        let done2 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jge, Reg::R4, 16, 0));
        self.push(Insn::alu64_imm(AluOp::Add, Reg::R4, 1));
        self.push(Insn::mov64_reg(Reg::R3, Reg::R0));
        self.push(Insn::atomic_cmpxchg64(Reg::R1, off, Reg::R2));
        self.jmp_abs(Insn::jmp_reg(JmpOp::Jne, Reg::R0, Reg::R3, 0), top);
        self.patch_here(done1);
        self.patch_here(done2);
    }

    /// Keep the laundering pointer in the reserved slot at fp-24.
    fn save_tmp(&mut self, r: Reg) {
        self.push(Insn::stx(Size::DW, Reg::FP, -24, r));
    }

    /// Pass r0 through map memory: the verifier forgets its exact value, so the states that
    /// leave a loop at different iterations become one.
    fn launder(&mut self) {
        self.push(Insn::ldx(Size::DW, Reg::R1, Reg::FP, -24));
        self.push(Insn::stx(Size::DW, Reg::R1, 0, Reg::R0));
        self.push(Insn::ldx(Size::DW, Reg::R0, Reg::R1, 0));
    }

    /// r0 = strlen(r1), at most `max`: a bounded loop.
    fn expand_strlen(&mut self, max: u32) {
        self.push(Insn::mov64_imm(Reg::R0, 0));
        let top = self.out.insns.len();
        let done1 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jge, Reg::R0, max as i32, 0));
        self.push(Insn::mov64_reg(Reg::R3, Reg::R1));
        self.push(Insn::alu64_reg(AluOp::Add, Reg::R3, Reg::R0));
        self.push(Insn::ldx(Size::B, Reg::R3, Reg::R3, 0));
        let done2 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0));
        self.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.jmp_abs(Insn::ja(0), top);
        self.patch_here(done1);
        self.patch_here(done2);
    }

    /// r0 = index of byte r2 in string r1 (first, or last when `reverse`), or -1.
    fn expand_strchr(&mut self, max: u32, reverse: bool) {
        self.push(Insn::mov64_imm(Reg::R4, -1)); // result
        self.push(Insn::mov64_imm(Reg::R0, 0)); // index
        self.push(Insn::alu64_imm(AluOp::And, Reg::R2, 0xff));
        let top = self.out.insns.len();
        let done1 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jge, Reg::R0, max as i32, 0));
        self.push(Insn::mov64_reg(Reg::R3, Reg::R1));
        self.push(Insn::alu64_reg(AluOp::Add, Reg::R3, Reg::R0));
        self.push(Insn::ldx(Size::B, Reg::R3, Reg::R3, 0));
        // Searching for NUL finds the terminator itself.
        let no_match = self.jmp_fwd(Insn::jmp_reg(JmpOp::Jne, Reg::R3, Reg::R2, 0));
        self.push(Insn::mov64_reg(Reg::R4, Reg::R0));
        let done2 = if reverse {
            None
        } else {
            Some(self.jmp_fwd(Insn::ja(0)))
        };
        self.patch_here(no_match);
        let done3 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0));
        self.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.jmp_abs(Insn::ja(0), top);
        self.patch_here(done1);
        if let Some(d) = done2 {
            self.patch_here(d);
        }
        self.patch_here(done3);
        self.push(Insn::mov64_reg(Reg::R0, Reg::R4));
    }

    /// r0 = offset of the literal `lit` in string r1 at or after r3 (first, or last when
    /// `reverse`), or -1: one bounded loop over positions, the needle's bytes unrolled as
    /// immediates.
    fn expand_strstr_literal(&mut self, lit: &[u8], max: u32, reverse: bool) {
        self.push(Insn::mov64_imm(Reg::R4, -1));
        self.push(Insn::mov64_reg(Reg::R0, Reg::R3));
        let len = lit.len() as u32;
        if len == 0 {
            self.push(Insn::mov64_reg(Reg::R4, Reg::R3));
            self.push(Insn::mov64_reg(Reg::R0, Reg::R4));
            return;
        }
        if len > max {
            self.push(Insn::mov64_reg(Reg::R0, Reg::R4));
            return;
        }
        let top = self.out.insns.len();
        let done1 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jgt, Reg::R0, (max - len) as i32, 0));
        self.push(Insn::mov64_reg(Reg::R2, Reg::R1));
        self.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R0));
        let mut mismatches = Vec::new();
        for (k, b) in lit.iter().enumerate() {
            self.push(Insn::ldx(Size::B, Reg::R5, Reg::R2, k as i16));
            mismatches.push(self.jmp_fwd(Insn::jmp_imm(JmpOp::Jne, Reg::R5, *b as i32, 0)));
        }
        self.push(Insn::mov64_reg(Reg::R4, Reg::R0));
        let found = if reverse {
            None
        } else {
            Some(self.jmp_fwd(Insn::ja(0)))
        };
        for m in mismatches {
            self.patch_here(m);
        }
        // The haystack ends at its NUL.
        self.push(Insn::ldx(Size::B, Reg::R5, Reg::R2, 0));
        let done2 = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jeq, Reg::R5, 0, 0));
        self.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.jmp_abs(Insn::ja(0), top);
        self.patch_here(done1);
        self.patch_here(done2);
        if let Some(f) = found {
            self.patch_here(f);
        }
        self.push(Insn::mov64_reg(Reg::R0, Reg::R4));
    }

    /// r0 = offset of string r2 in string r1 at or after r3 (first, or last when `reverse`),
    /// or -1. Quadratic, bounded by `max` in both loops.
    fn expand_strstr(&mut self, max: u32, reverse: bool) {
        // r4 = result, r3 = i (start), r5 = j, r0 = scratch.
        self.push(Insn::mov64_imm(Reg::R4, -1));
        let outer = self.out.insns.len();
        let done_outer = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jge, Reg::R3, max as i32, 0));
        self.push(Insn::mov64_imm(Reg::R5, 0));
        let inner = self.out.insns.len();
        let matched_all = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jge, Reg::R5, max as i32, 0));
        // needle byte
        self.push(Insn::mov64_reg(Reg::R0, Reg::R2));
        self.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R5));
        self.push(Insn::ldx(Size::B, Reg::R0, Reg::R0, 0));
        let needle_end = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0));
        // hay byte at i + j: bound the sum so the access stays inside the buffer.
        self.push(Insn::stx(Size::DW, Reg::FP, -8, Reg::R0));
        self.push(Insn::mov64_reg(Reg::R0, Reg::R3));
        self.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R5));
        let past_end = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jge, Reg::R0, max as i32, 0));
        self.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1));
        self.push(Insn::ldx(Size::B, Reg::R0, Reg::R0, 0));
        self.push(Insn::stx(Size::DW, Reg::FP, -16, Reg::R0));
        self.push(Insn::ldx(Size::DW, Reg::R0, Reg::FP, -8));
        self.push(Insn::stx(Size::DW, Reg::FP, -8, Reg::R4));
        self.push(Insn::ldx(Size::DW, Reg::R4, Reg::FP, -16));
        let differ = self.jmp_fwd(Insn::jmp_reg(JmpOp::Jne, Reg::R0, Reg::R4, 0));
        self.push(Insn::ldx(Size::DW, Reg::R4, Reg::FP, -8));
        self.push(Insn::alu64_imm(AluOp::Add, Reg::R5, 1));
        self.jmp_abs(Insn::ja(0), inner);
        // Mismatch: restore the result and advance i (unless the haystack ended).
        self.patch_here(differ);
        let hay_byte_zero = self.jmp_fwd(Insn::jmp_imm(JmpOp::Jeq, Reg::R4, 0, 0));
        self.push(Insn::ldx(Size::DW, Reg::R4, Reg::FP, -8));
        self.push(Insn::alu64_imm(AluOp::Add, Reg::R3, 1));
        self.jmp_abs(Insn::ja(0), outer);
        self.patch_here(hay_byte_zero);
        self.push(Insn::ldx(Size::DW, Reg::R4, Reg::FP, -8));
        let done_nul = self.jmp_fwd(Insn::ja(0));
        // Whole needle matched at i.
        self.patch_here(matched_all);
        self.patch_here(needle_end);
        self.push(Insn::mov64_reg(Reg::R4, Reg::R3));
        let done_found = if reverse {
            self.push(Insn::alu64_imm(AluOp::Add, Reg::R3, 1));
            self.jmp_abs(Insn::ja(0), outer);
            None
        } else {
            Some(self.jmp_fwd(Insn::ja(0)))
        };
        self.patch_here(past_end);
        self.patch_here(done_outer);
        self.patch_here(done_nul);
        if let Some(d) = done_found {
            self.patch_here(d);
        }
        self.push(Insn::mov64_reg(Reg::R0, Reg::R4));
    }
}

/// Allocate registers and emit the function. Pseudo-ops that spill to the stack use the two
/// top 8-byte slots (fp-8, fp-16), which `Function::new` callers must reserve first.
pub fn emit(f: &Function) -> Result<Emitted, String> {
    let alloc = allocate(f)?;
    let mut e = Emitter {
        alloc: &alloc,
        out: Emitted::default(),
        labels: HashMap::new(),
        fixups: Vec::new(),
    };
    // The context arrives in r1.
    match alloc.loc(Function::CTX) {
        Loc::Reg(r) if r != Reg::R1 => e.push(Insn::mov64_reg(r, Reg::R1)),
        Loc::Spill(off) => e.push(Insn::stx(Size::DW, Reg::FP, -(off as i16), Reg::R1)),
        _ => {}
    }
    for inst in &f.insts {
        e.inst(inst);
    }
    if !matches!(f.insts.last(), Some(Inst::Ret(_))) {
        e.push(Insn::mov64_imm(Reg::R0, 0));
        e.push(Insn::exit());
    }
    for (at, label) in std::mem::take(&mut e.fixups) {
        let target = *e
            .labels
            .get(&label)
            .ok_or_else(|| format!("undefined label L{}", label.0))?;
        let off = target as i64 - at as i64 - 1;
        if off < 0 || off > i16::MAX as i64 {
            return Err(format!("branch offset {off} out of range in {}", f.name));
        }
        e.out.insns[at].off = off as i16;
    }
    Ok(e.out)
}
