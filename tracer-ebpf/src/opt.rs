//! IR clean-up before register allocation: the lowering emits simple, uniform code (every
//! constant in a register, `p + 0` for a field at offset 0, a copy of each helper's result)
//! and this pass removes what that costs, so each instruction saved is saved on every event.
//!
//! The IR is not SSA (a virtual register may be assigned on several paths), so every rewrite
//! here is limited to what is provably the same value: a constant is propagated only from a
//! register's single definition to uses that definition dominates; a copy is propagated only
//! inside the straight-line run after it. Passes repeat until nothing changes.

use crate::insn::{AluOp, JmpOp};
use crate::ir::{Function, Inst, Label, Operand, VReg};
use std::collections::{HashMap, HashSet};

/// Optimise `f` in place.
pub fn optimize(f: &mut Function) {
    for _ in 0..16 {
        let mut changed = false;
        changed |= propagate_constants(f);
        changed |= fold(f);
        changed |= propagate_copies(f);
        changed |= remove_unreachable(f);
        changed |= remove_dead(f);
        changed |= remove_overwritten_zeroing(f);
        if !changed {
            break;
        }
    }
}

fn fits_i32(v: i64) -> bool {
    i32::try_from(v).is_ok()
}

/// For each label, the lowest index of an instruction that jumps to it.
fn label_sources(f: &Function) -> HashMap<Label, usize> {
    let mut m: HashMap<Label, usize> = HashMap::new();
    for (i, inst) in f.insts.iter().enumerate() {
        let t = match inst {
            Inst::Branch { target, .. } => *target,
            Inst::Jump(l) => *l,
            _ => continue,
        };
        let e = m.entry(t).or_insert(i);
        *e = (*e).min(i);
    }
    m
}

/// Replace uses of single-definition constants by immediates where the definition
/// dominates every use (no label between them is reached from before the definition).
fn propagate_constants(f: &mut Function) -> bool {
    let n = f.vreg_count() as usize;
    let mut defs = vec![0u32; n];
    let mut def_at = vec![usize::MAX; n];
    let mut first_use = vec![usize::MAX; n];
    let mut last_use = vec![0usize; n];
    for (i, inst) in f.insts.iter().enumerate() {
        for u in inst.uses() {
            first_use[u.0 as usize] = first_use[u.0 as usize].min(i);
            last_use[u.0 as usize] = last_use[u.0 as usize].max(i);
        }
        if let Some(d) = inst.def() {
            defs[d.0 as usize] += 1;
            def_at[d.0 as usize] = i;
        }
    }
    let sources = label_sources(f);
    let labels: Vec<(usize, usize)> = f
        .insts
        .iter()
        .enumerate()
        .filter_map(|(i, inst)| match inst {
            Inst::Label(l) => Some((i, sources.get(l).copied().unwrap_or(usize::MAX))),
            _ => None,
        })
        .collect();
    let mut consts: HashMap<VReg, i64> = HashMap::new();
    for v in 1..n {
        if defs[v] != 1 || first_use[v] == usize::MAX {
            continue;
        }
        let d = def_at[v];
        let Inst::Mov {
            src: Operand::Imm(c),
            ..
        } = f.insts[d]
        else {
            continue;
        };
        if first_use[v] <= d {
            continue;
        }
        let dominated = labels
            .iter()
            .filter(|(p, _)| *p > d && *p <= last_use[v])
            .all(|(_, src)| *src > d);
        if dominated {
            consts.insert(VReg(v as u32), c);
        }
    }
    if consts.is_empty() {
        return false;
    }
    let mut changed = false;
    let sub = |o: &mut Operand, narrow: bool, changed: &mut bool| {
        if let Operand::Reg(r) = o {
            if let Some(&c) = consts.get(r) {
                if !narrow || fits_i32(c) {
                    *o = Operand::Imm(c);
                    *changed = true;
                }
            }
        }
    };
    for inst in f.insts.iter_mut() {
        match inst {
            Inst::Mov { src, .. } => sub(src, false, &mut changed),
            Inst::Alu { a, b, .. } => {
                sub(a, false, &mut changed);
                sub(b, true, &mut changed);
            }
            Inst::Store { src, .. } => sub(src, true, &mut changed),
            Inst::Branch { cond, a, b, target } => {
                sub(b, true, &mut changed);
                // A constant compared with a constant decides the branch statically.
                if let (Some(&x), Operand::Imm(y)) = (consts.get(a), *b) {
                    if let Some(taken) = eval_cond(*cond, x, y) {
                        *inst = if taken {
                            Inst::Jump(*target)
                        } else {
                            Inst::Line(u32::MAX)
                        };
                        changed = true;
                    }
                }
            }
            Inst::Call { args, .. } => {
                for a in args.iter_mut() {
                    sub(a, false, &mut changed);
                }
            }
            Inst::Ret(o) => sub(o, false, &mut changed),
            _ => {}
        }
    }
    // Placeholders for branches that are never taken.
    f.insts.retain(|i| *i != Inst::Line(u32::MAX));
    changed
}

fn eval_cond(c: JmpOp, x: i64, y: i64) -> Option<bool> {
    let (ux, uy) = (x as u64, y as u64);
    Some(match c {
        JmpOp::Jeq => x == y,
        JmpOp::Jne => x != y,
        JmpOp::Jgt => ux > uy,
        JmpOp::Jge => ux >= uy,
        JmpOp::Jlt => ux < uy,
        JmpOp::Jle => ux <= uy,
        JmpOp::Jsgt => x > y,
        JmpOp::Jsge => x >= y,
        JmpOp::Jslt => x < y,
        JmpOp::Jsle => x <= y,
        JmpOp::Jset => x & y != 0,
        _ => return None,
    })
}

/// eBPF's 64-bit ALU semantics on constants (division by zero gives 0, modulo by zero
/// leaves the dividend, shifts take the amount modulo 64).
fn eval_alu(op: AluOp, a: i64, b: i64) -> Option<i64> {
    let (ua, ub) = (a as u64, b as u64);
    Some(match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div => ua.checked_div(ub).unwrap_or(0) as i64,
        AluOp::Mod => ua.checked_rem(ub).unwrap_or(ua) as i64,
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => (ua << (ub & 63)) as i64,
        AluOp::Rsh => (ua >> (ub & 63)) as i64,
        AluOp::Arsh => a >> (ub & 63),
        _ => return None,
    })
}

/// Arithmetic on constants, identities (`x + 0`, `x * 1`, ...), and copies to self.
fn fold(f: &mut Function) -> bool {
    let mut changed = false;
    for inst in f.insts.iter_mut() {
        let new = match inst {
            Inst::Alu {
                op,
                dst,
                a: Operand::Imm(x),
                b: Operand::Imm(y),
            } => eval_alu(*op, *x, *y).map(|v| Inst::Mov {
                dst: *dst,
                src: Operand::Imm(v),
            }),
            Inst::Alu {
                op,
                dst,
                a,
                b: Operand::Imm(y),
            } => {
                let identity = match op {
                    AluOp::Add
                    | AluOp::Sub
                    | AluOp::Or
                    | AluOp::Xor
                    | AluOp::Lsh
                    | AluOp::Rsh
                    | AluOp::Arsh => *y == 0,
                    AluOp::Mul | AluOp::Div => *y == 1,
                    AluOp::And => *y == -1,
                    _ => false,
                };
                identity.then_some(Inst::Mov { dst: *dst, src: *a })
            }
            _ => None,
        };
        if let Some(n) = new {
            *inst = n;
            changed = true;
        }
    }
    let before = f.insts.len();
    f.insts
        .retain(|i| !matches!(i, Inst::Mov { dst, src: Operand::Reg(s) } if dst == s));
    changed || f.insts.len() != before
}

/// After `d = s`, read `d` instead of `s` until either is redefined or control can arrive
/// from elsewhere (a label): `s` then often dies at the copy and the register allocator
/// gives both the same register.
fn propagate_copies(f: &mut Function) -> bool {
    let mut changed = false;
    for i in 0..f.insts.len() {
        let Inst::Mov {
            dst: d,
            src: Operand::Reg(s),
        } = f.insts[i]
        else {
            continue;
        };
        if d == s || d == Function::CTX || s == Function::CTX {
            continue;
        }
        if forward_copy(f, i, d, s) {
            changed = true;
            continue;
        }
        for j in i + 1..f.insts.len() {
            if matches!(f.insts[j], Inst::Label(_)) {
                break;
            }
            if rename_uses(&mut f.insts[j], s, d) {
                changed = true;
            }
            if let Some(x) = f.insts[j].def() {
                if x == s || x == d {
                    break;
                }
            }
        }
    }
    f.insts.retain(|i| *i != Inst::Line(u32::MAX - 1));
    changed
}

/// When the copy `d = s` at `i` is `d`'s only definition and `s` still holds the same value
/// at every read of `d` (not redefined in between, no label reached from before the copy),
/// read `s` there instead and drop the copy.
fn forward_copy(f: &mut Function, i: usize, d: VReg, s: VReg) -> bool {
    let sources = label_sources(f);
    let mut last = i;
    for (j, inst) in f.insts.iter().enumerate() {
        if j != i && inst.def() == Some(d) {
            return false;
        }
        if inst.uses().contains(&d) {
            if j <= i
                || !matches!(
                    inst,
                    Inst::Mov { .. }
                        | Inst::Alu { .. }
                        | Inst::Neg { .. }
                        | Inst::ToBe { .. }
                        | Inst::Load { .. }
                        | Inst::Store { .. }
                        | Inst::Call { .. }
                        | Inst::Branch { .. }
                        | Inst::Ret(_)
                )
            {
                return false;
            }
            last = j;
        }
    }
    for inst in &f.insts[i + 1..last] {
        match inst {
            Inst::Label(l) if sources.get(l).is_some_and(|src| *src < i) => return false,
            _ if inst.def() == Some(s) => return false,
            _ => {}
        }
    }
    for inst in f.insts[i + 1..=last].iter_mut() {
        rename_uses(inst, d, s);
    }
    f.insts.remove(i);
    // Keep indices stable for the caller's loop: a line mark generates no code.
    f.insts.insert(i, Inst::Line(u32::MAX - 1));
    true
}

/// Rewrite reads of `from` as reads of `to` in one instruction.
fn rename_uses(inst: &mut Inst, from: VReg, to: VReg) -> bool {
    let mut changed = false;
    let mut r = |v: &mut VReg| {
        if *v == from {
            *v = to;
            changed = true;
        }
    };
    let o = |op: &mut Operand, r: &mut dyn FnMut(&mut VReg)| {
        if let Operand::Reg(v) = op {
            r(v);
        }
    };
    match inst {
        Inst::Mov { src, .. } => o(src, &mut r),
        Inst::Alu { a, b, .. } => {
            o(a, &mut r);
            o(b, &mut r);
        }
        Inst::Neg { a, .. } | Inst::ToBe { a, .. } => r(a),
        Inst::Load { base, .. } => r(base),
        Inst::Store { base, src, .. } => {
            r(base);
            o(src, &mut r);
        }
        Inst::Call { args, .. } => {
            for a in args.iter_mut() {
                o(a, &mut r);
            }
        }
        Inst::Branch { a, b, .. } => {
            r(a);
            o(b, &mut r);
        }
        Inst::Ret(op) => o(op, &mut r),
        // Pseudo-ops keep their operands: their expansions pin registers.
        _ => {}
    }
    changed
}

/// Drop code after a jump or return that no branch reaches, jumps to the next instruction,
/// and labels nothing jumps to.
fn remove_unreachable(f: &mut Function) -> bool {
    let before = f.insts.clone();
    // Jumps and branches to a label with nothing but labels and line marks in between.
    let mut i = 0;
    while i < f.insts.len() {
        let target = match f.insts[i] {
            Inst::Jump(l) => Some(l),
            Inst::Branch { target, .. } => Some(target),
            _ => None,
        };
        if let Some(t) = target {
            let next = f.insts[i + 1..]
                .iter()
                .take_while(|x| matches!(x, Inst::Label(_) | Inst::Line(_)))
                .any(|x| *x == Inst::Label(t));
            if next {
                f.insts.remove(i);
                continue;
            }
        }
        i += 1;
    }
    let mut reachable = true;
    let mut targets: HashSet<Label> = HashSet::new();
    let mut out = Vec::with_capacity(f.insts.len());
    for inst in f.insts.drain(..) {
        if let Inst::Label(l) = inst {
            reachable |= targets.contains(&l);
        }
        if !reachable {
            continue;
        }
        match &inst {
            Inst::Jump(l) => {
                targets.insert(*l);
                out.push(inst);
                reachable = false;
                continue;
            }
            Inst::Branch { target, .. } => {
                targets.insert(*target);
            }
            Inst::Ret(_) => {
                out.push(inst);
                reachable = false;
                continue;
            }
            _ => {}
        }
        out.push(inst);
    }
    // Labels nothing jumps to any more.
    out.retain(|i| !matches!(i, Inst::Label(l) if !targets.contains(l)));
    f.insts = out;
    f.insts != before
}

/// Drop a `memzero` whose bytes are all stored again before anything can read them: stores
/// through the same pointer that follow it in straight-line code, with only arithmetic and
/// pointer-free helper calls between.
fn remove_overwritten_zeroing(f: &mut Function) -> bool {
    let mut dead = Vec::new();
    for (i, inst) in f.insts.iter().enumerate() {
        let Inst::MemZero { dst, len } = *inst else {
            continue;
        };
        if len > 256 {
            continue;
        }
        let mut covered = vec![false; len as usize];
        for next in &f.insts[i + 1..] {
            match next {
                Inst::Store {
                    base,
                    off,
                    src,
                    size,
                } if *base == dst => {
                    let (lo, hi) = (*off as i64, *off as i64 + size.bytes() as i64);
                    for b in lo.max(0)..hi.min(len as i64) {
                        covered[b as usize] = true;
                    }
                    if covered.iter().all(|c| *c) {
                        dead.push(i);
                        break;
                    }
                }
                // bpf_get_current_comm writes all `n` bytes it is given (NUL-padded).
                Inst::Call {
                    helper: crate::insn::helper::GET_CURRENT_COMM,
                    args,
                    ..
                } if args.first() == Some(&Operand::Reg(dst)) => {
                    if let Some(Operand::Imm(n)) = args.get(1) {
                        for b in 0..(*n).clamp(0, len as i64) {
                            covered[b as usize] = true;
                        }
                    }
                    if covered.iter().all(|c| *c) {
                        dead.push(i);
                        break;
                    }
                }
                // Only instructions that cannot read the buffer through any pointer (an
                // alias included) may come between: arithmetic, and helpers without pointer
                // arguments.
                Inst::Mov { dst: d, .. }
                | Inst::Alu { dst: d, .. }
                | Inst::Neg { dst: d, .. }
                | Inst::ToBe { dst: d, .. }
                    if *d != dst => {}
                Inst::Call { args, dst: d, .. }
                    if *d != Some(dst) && args.iter().all(|a| matches!(a, Operand::Imm(_))) => {}
                Inst::Line(_) => {}
                _ => break,
            }
        }
    }
    for &i in dead.iter().rev() {
        f.insts.remove(i);
    }
    !dead.is_empty()
}

/// Remove side-effect-free definitions nothing reads, and helper results nothing reads.
fn remove_dead(f: &mut Function) -> bool {
    let n = f.vreg_count() as usize;
    let mut used = vec![false; n];
    used[0] = true;
    for inst in &f.insts {
        for u in inst.uses() {
            used[u.0 as usize] = true;
        }
    }
    let before = f.insts.len();
    let mut changed = false;
    f.insts.retain(|i| match i {
        Inst::Mov { dst, .. }
        | Inst::Alu { dst, .. }
        | Inst::Neg { dst, .. }
        | Inst::ToBe { dst, .. }
        | Inst::Load { dst, .. }
        | Inst::StackAddr { dst, .. }
        | Inst::MapPtr { dst, .. } => used[dst.0 as usize],
        _ => true,
    });
    for inst in f.insts.iter_mut() {
        if let Inst::Call {
            dst: d @ Some(_), ..
        } = inst
        {
            if !used[d.unwrap().0 as usize] {
                *d = None;
                changed = true;
            }
        }
    }
    changed || f.insts.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{helper, Size};

    #[test]
    fn constants_fold_into_operands_and_dead_code_goes() {
        let mut f = Function::new("t");
        let out = f.label();
        let c = f.imm(4096);
        let x = f.load(Function::CTX, 16, Size::DW);
        f.branch(JmpOp::Jsle, x, c, out);
        let p = f.alu(AluOp::Add, x, Operand::Imm(0));
        f.store(p, 0, c, Size::DW);
        f.push(Inst::Label(out));
        f.push(Inst::Ret(Operand::Imm(0)));
        optimize(&mut f);
        let text = f.to_string();
        assert!(text.contains("if v2 Jsle 4096 goto L1"), "{text}");
        assert!(text.contains("*(DW)(v2 + 0) = 4096"), "{text}");
        assert!(!text.contains("v1 = 4096"), "{text}");
        assert!(!text.contains("Add 0"), "{text}");
    }

    #[test]
    fn constant_branches_are_decided_and_unreachable_code_removed() {
        let mut f = Function::new("t");
        let skip = f.label();
        let z = f.imm(0);
        f.branch(JmpOp::Jeq, z, Operand::Imm(0), skip);
        f.call(helper::KTIME_GET_NS, vec![]);
        f.push(Inst::Label(skip));
        f.push(Inst::Ret(Operand::Imm(0)));
        optimize(&mut f);
        assert_eq!(f.insts, vec![Inst::Ret(Operand::Imm(0))]);
    }

    #[test]
    fn a_constant_assigned_on_one_path_only_is_not_propagated() {
        // v1 = 5 only when the branch falls through; the join must keep reading v1.
        let mut f = Function::new("t");
        let join = f.label();
        let v = f.vreg();
        let x = f.load(Function::CTX, 0, Size::DW);
        f.branch(JmpOp::Jeq, x, Operand::Imm(0), join);
        f.push(Inst::Mov {
            dst: v,
            src: Operand::Imm(5),
        });
        f.push(Inst::Label(join));
        f.push(Inst::Ret(Operand::Reg(v)));
        optimize(&mut f);
        assert!(f.to_string().contains("return v1"), "{f}");
    }

    #[test]
    fn zeroing_that_stores_overwrite_is_dropped_but_not_across_a_read() {
        let mut f = Function::new("t");
        let a = f.stack_addr(40);
        f.push(Inst::MemZero { dst: a, len: 8 });
        let t = f.call(helper::KTIME_GET_NS, vec![]);
        f.store(a, 0, t, Size::DW);
        let b = f.stack_addr(56);
        f.push(Inst::MemZero { dst: b, len: 16 });
        f.store(b, 0, t, Size::DW);
        // The helper may read all 16 bytes: the zeroing must stay.
        f.call(helper::MAP_LOOKUP_ELEM, vec![Operand::Imm(0), b.into()]);
        f.store(b, 8, t, Size::DW);
        f.push(Inst::Ret(Operand::Imm(0)));
        optimize(&mut f);
        let text = f.to_string();
        assert!(!text.contains("memzero(v1"), "{text}");
        assert!(text.contains("memzero(v3, 16)"), "{text}");
    }

    #[test]
    fn an_exchange_stays_when_nothing_reads_its_result() {
        // The store half is the point (releasing or claiming a flag), not the old value.
        let mut f = Function::new("t");
        let p = f.load(Function::CTX, 0, Size::DW);
        let old = f.vreg();
        f.push(Inst::AtomicXchg {
            dst: old,
            base: p,
            off: 8,
            val: Operand::Imm(1),
        });
        f.push(Inst::Ret(Operand::Imm(0)));
        optimize(&mut f);
        assert!(f.to_string().contains("v2 = xchg((DW)(v1 + 8), 1)"), "{f}");
    }

    #[test]
    fn unused_helper_results_are_dropped() {
        let mut f = Function::new("t");
        f.call(helper::KTIME_GET_NS, vec![]);
        f.push(Inst::Ret(Operand::Imm(0)));
        optimize(&mut f);
        assert!(matches!(f.insts[0], Inst::Call { dst: None, .. }));
    }
}
