//! Linear-scan register allocation.
//!
//! The IR has forward branches only, so a virtual register's live range is the interval from
//! its first definition to its last use in instruction order. Intervals that span a helper
//! call (or a pseudo-op, which clobbers the same registers) need a callee-saved register
//! (r6–r9); the others may also use r1–r4. r0 and r5 stay free as scratch for the emitter
//! (spill reloads, immediates, call results). When registers run out, the interval that ends
//! last is spilled to its own 8-byte stack slot.

use crate::insn::Reg;
use crate::ir::{Function, VReg};

/// Where a virtual register lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    Reg(Reg),
    /// Stack slot at `fp - offset`.
    Spill(u32),
    /// Never defined or used.
    Unused,
}

#[derive(Debug, Clone)]
pub struct Allocation {
    pub locs: Vec<Loc>,
    /// Total stack bytes used (buffers + spill slots).
    pub stack_size: u32,
}

impl Allocation {
    pub fn loc(&self, v: VReg) -> Loc {
        self.locs.get(v.0 as usize).copied().unwrap_or(Loc::Unused)
    }
}

const CALLEE_SAVED: [Reg; 4] = [Reg::R6, Reg::R7, Reg::R8, Reg::R9];
const CALLER_SAVED: [Reg; 4] = [Reg::R1, Reg::R2, Reg::R3, Reg::R4];

#[derive(Debug, Clone, Copy)]
struct Interval {
    vreg: VReg,
    start: usize,
    end: usize,
    crosses_call: bool,
}

fn intervals(f: &Function) -> Vec<Interval> {
    let n = f.vreg_count() as usize;
    let mut start = vec![usize::MAX; n];
    let mut end = vec![0usize; n];
    // The context pointer arrives in r1 before instruction 0.
    start[0] = 0;
    for (i, inst) in f.insts.iter().enumerate() {
        for u in inst.uses() {
            let u = u.0 as usize;
            start[u] = start[u].min(i);
            end[u] = end[u].max(i);
        }
        if let Some(d) = inst.def() {
            let d = d.0 as usize;
            start[d] = start[d].min(i);
            end[d] = end[d].max(i);
        }
    }
    // Prefix count of clobbering instructions, to test "a call strictly inside (start, end)".
    let mut calls = vec![0u32; f.insts.len() + 1];
    for (i, inst) in f.insts.iter().enumerate() {
        calls[i + 1] = calls[i] + inst.clobbers_caller_saved() as u32;
    }
    let mut out = Vec::new();
    for v in 0..n {
        if start[v] == usize::MAX {
            continue;
        }
        let (s, e) = (start[v], end[v].max(start[v]));
        // Calls at positions s+1 ..= e-1 clobber the value; a call at `s` defines it (result in
        // r0) and one at `e` only reads it.
        let crosses_call = e > s + 1 && calls[e] - calls[s + 1] > 0;
        // The context pointer must survive the whole program's calls.
        out.push(Interval {
            vreg: VReg(v as u32),
            start: s,
            end: e,
            crosses_call,
        });
    }
    out.sort_by_key(|i| (i.start, i.vreg));
    out
}

/// Copies `dst = src` where `src` dies at the copy and `dst` starts there: giving both one
/// register makes the copy vanish. `src` then takes a callee-saved register when `dst` needs
/// one, so that `dst` can inherit it.
fn copy_hints(f: &Function, ivs: &mut [Interval]) -> Vec<Option<VReg>> {
    let n = f.vreg_count() as usize;
    let mut hint = vec![None; n];
    let mut at = vec![usize::MAX; n];
    for (i, iv) in ivs.iter().enumerate() {
        at[iv.vreg.0 as usize] = i;
    }
    for (i, inst) in f.insts.iter().enumerate() {
        use crate::ir::{Inst, Operand};
        // Two-address forms: the emitter computes `dst` by first copying `src` into it.
        let (dst, src) = match inst {
            Inst::Mov {
                dst,
                src: Operand::Reg(src),
            }
            | Inst::Alu {
                dst,
                a: Operand::Reg(src),
                ..
            } => (dst, src),
            Inst::Neg { dst, a } | Inst::ToBe { dst, a, .. } => (dst, a),
            _ => continue,
        };
        let (d, s) = (at[dst.0 as usize], at[src.0 as usize]);
        if d == usize::MAX || s == usize::MAX || *src == Function::CTX {
            continue;
        }
        if ivs[s].end == i && ivs[d].start == i {
            hint[dst.0 as usize] = Some(*src);
            if ivs[d].crosses_call {
                ivs[s].crosses_call = true;
            }
        }
    }
    hint
}

pub fn allocate(f: &Function) -> Result<Allocation, String> {
    let mut ivs = intervals(f);
    // Walk chains of copies from the last to the first, so a callee-saved need propagates back.
    for _ in 0..4 {
        copy_hints(f, &mut ivs);
    }
    let hints = copy_hints(f, &mut ivs);
    // A value whose last use is as a helper argument prefers that argument's register.
    let mut prefer: Vec<Option<Reg>> = vec![None; f.vreg_count() as usize];
    {
        let mut at = vec![usize::MAX; f.vreg_count() as usize];
        for (i, iv) in ivs.iter().enumerate() {
            at[iv.vreg.0 as usize] = i;
        }
        for (i, inst) in f.insts.iter().enumerate() {
            if let crate::ir::Inst::Call { args, .. } = inst {
                for (k, a) in args.iter().enumerate() {
                    if let crate::ir::Operand::Reg(v) = a {
                        let iv = at[v.0 as usize];
                        if iv != usize::MAX && ivs[iv].end == i && !ivs[iv].crosses_call {
                            prefer[v.0 as usize] = Some(Reg(k as u8 + 1));
                        }
                    }
                }
            }
        }
    }
    let mut locs = vec![Loc::Unused; f.vreg_count() as usize];
    let mut stack = f.stack_used;
    let mut spill = |locs: &mut Vec<Loc>, v: VReg| {
        stack += 8;
        locs[v.0 as usize] = Loc::Spill(stack);
    };
    // Active intervals holding a register, with that register.
    let mut active: Vec<(Interval, Reg)> = Vec::new();
    for cur in ivs {
        active.retain(|(iv, _)| iv.end >= cur.start);
        let taken = |r: Reg, active: &Vec<(Interval, Reg)>| active.iter().any(|(_, a)| *a == r);
        let pool: Vec<Reg> = if cur.crosses_call {
            CALLEE_SAVED.to_vec()
        } else {
            CALLER_SAVED
                .iter()
                .chain(CALLEE_SAVED.iter())
                .copied()
                .collect()
        };
        // Take over the register of the value this one is copied from when it dies here.
        if let Some(src) = hints[cur.vreg.0 as usize] {
            if let Some(i) = active
                .iter()
                .position(|(iv, r)| iv.vreg == src && iv.end == cur.start && pool.contains(r))
            {
                let r = active[i].1;
                active.remove(i);
                locs[cur.vreg.0 as usize] = Loc::Reg(r);
                active.push((cur, r));
                continue;
            }
        }
        // (r5, a fifth argument's register, is the emitter's and never in a pool.)
        if let Some(r) =
            prefer[cur.vreg.0 as usize].filter(|r| pool.contains(r) && !taken(*r, &active))
        {
            locs[cur.vreg.0 as usize] = Loc::Reg(r);
            active.push((cur, r));
            continue;
        }
        if let Some(r) = pool.iter().copied().find(|r| !taken(*r, &active)) {
            locs[cur.vreg.0 as usize] = Loc::Reg(r);
            active.push((cur, r));
            continue;
        }
        // Spill whichever of `cur` and the active intervals in its pool ends last.
        let victim = active
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| pool.contains(r))
            .max_by_key(|(_, (iv, _))| iv.end)
            .map(|(i, (iv, r))| (i, *iv, *r));
        match victim {
            Some((i, iv, r)) if iv.end > cur.end => {
                spill(&mut locs, iv.vreg);
                active.remove(i);
                locs[cur.vreg.0 as usize] = Loc::Reg(r);
                active.push((cur, r));
            }
            _ => spill(&mut locs, cur.vreg),
        }
    }
    if stack > 512 {
        return Err(format!(
            "program {} needs {stack} bytes of stack; the kernel allows 512 (simplify the clause)",
            f.name
        ));
    }
    Ok(Allocation {
        locs,
        stack_size: stack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{helper, AluOp};
    use crate::ir::Operand;

    #[test]
    fn values_live_across_calls_get_callee_saved_registers() {
        let mut f = Function::new("t");
        let a = f.imm(1);
        let t = f.call(helper::KTIME_GET_NS, vec![]);
        let s = f.alu(AluOp::Add, a, t);
        f.push(crate::ir::Inst::Ret(Operand::Reg(s)));
        let alloc = allocate(&f).unwrap();
        assert!(matches!(alloc.loc(a), Loc::Reg(r) if r.0 >= 6));
        assert!(matches!(alloc.loc(t), Loc::Reg(_)));
    }

    #[test]
    fn a_fifth_helper_argument_never_gets_the_emitters_r5() {
        let mut f = Function::new("t");
        let vs: Vec<VReg> = (0..5).map(|i| f.imm(i)).collect();
        f.push(crate::ir::Inst::Call {
            helper: helper::PERF_EVENT_OUTPUT,
            args: vs.iter().map(|v| Operand::Reg(*v)).collect(),
            dst: None,
        });
        let alloc = allocate(&f).unwrap();
        assert!(vs.iter().all(|v| alloc.loc(*v) != Loc::Reg(Reg::R5)));
    }

    #[test]
    fn spills_when_registers_run_out() {
        let mut f = Function::new("t");
        let vs: Vec<VReg> = (0..6).map(|i| f.imm(i)).collect();
        f.call(helper::KTIME_GET_NS, vec![]);
        let mut acc = f.imm(0);
        for v in &vs {
            acc = f.alu(AluOp::Add, acc, *v);
        }
        let alloc = allocate(&f).unwrap();
        let spilled = vs
            .iter()
            .filter(|v| matches!(alloc.loc(**v), Loc::Spill(_)))
            .count();
        assert_eq!(
            spilled, 2,
            "6 call-crossing values, 4 callee-saved registers"
        );
    }
}
