//! Aggregations: `@name[keys] = func(args)` updates a per-CPU hash map in place; the runtime
//! merges the CPUs when it prints.

use super::expr::Val;
use super::{CompileError, Lower, MapSpec, Result};
use crate::syntax::ast::{Expr, ExprKind};
use crate::types::Type;
use tracer_common::agg::{llquantize_bounds, lquantize_levels, minmax_bias, QUANTIZE_ZERO_BUCKET};
use tracer_common::record::{Field, FieldType};
use tracer_common::script::Stat;
use tracer_common::{AggDesc, AggFunc};
use tracer_ebpf::insn::{helper, map_type, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Operand, VReg};

/// An aggregation key: a value, or a stack captured straight into the key.
enum KeyVal {
    Val(Val),
    Stack {
        user: bool,
        depth: u32,
    },
    /// `execname`, written by bpf_get_current_comm straight into the key.
    Comm,
}

fn const_int(e: &Expr) -> Option<i64> {
    match &e.node {
        ExprKind::Int { value, .. } => Some(*value as i64),
        ExprKind::Unary {
            op: crate::syntax::ast::UnOp::Neg,
            expr,
        } => const_int(expr).map(|v| -v),
        _ => None,
    }
}

impl<'g, 'a> Lower<'g, 'a> {
    fn agg_func(
        &self,
        name: &str,
        args: &[Expr],
        span: crate::syntax::ast::Span,
    ) -> Result<(AggFunc, usize)> {
        let need = |n: usize, m: usize| -> Result<()> {
            if args.len() >= n && args.len() <= m {
                Ok(())
            } else {
                Err(CompileError::new(
                    span,
                    format!(
                        "{name}( ) prototype mismatch: {} arguments passed",
                        args.len()
                    ),
                ))
            }
        };
        let c = |i: usize| -> Result<i64> {
            const_int(&args[i]).ok_or_else(|| {
                CompileError::new(
                    args[i].span,
                    format!("{name}( ) argument #{} must be an integer constant", i + 1),
                )
            })
        };
        Ok(match name {
            "count" => {
                need(0, 0)?;
                (AggFunc::Count, 0)
            }
            "sum" | "avg" | "min" | "max" | "stddev" => {
                need(1, 1)?;
                let f = match name {
                    "sum" => AggFunc::Sum,
                    "avg" => AggFunc::Avg,
                    "min" => AggFunc::Min,
                    "max" => AggFunc::Max,
                    _ => AggFunc::Stddev,
                };
                (f, 1)
            }
            "quantize" => {
                need(1, 2)?;
                (AggFunc::Quantize, 1)
            }
            "lquantize" => {
                need(3, 5)?;
                let (low, high) = (c(1)?, c(2)?);
                let step = if args.len() > 3 { c(3)? } else { 1 };
                if step <= 0 || high <= low {
                    return Err(CompileError::new(
                        span,
                        "lquantize( ) needs low < high and a positive step",
                    ));
                }
                if (high - low) / step > 10_000 {
                    return Err(CompileError::new(
                        span,
                        "lquantize( ) would have more than 10000 levels",
                    ));
                }
                (AggFunc::Lquantize { low, high, step }, 1)
            }
            "llquantize" => {
                need(5, 6)?;
                let (factor, low, high, nsteps) = (c(1)?, c(2)?, c(3)?, c(4)?);
                if factor < 2 {
                    return Err(CompileError::new(
                        args[1].span,
                        "llquantize( ) factor must be at least 2",
                    ));
                }
                if nsteps < factor || nsteps % factor != 0 {
                    return Err(CompileError::new(
                        args[4].span,
                        "llquantize( ) factor must evenly divide the number of steps",
                    ));
                }
                if high < low {
                    return Err(CompileError::new(
                        args[3].span,
                        "llquantize( ) high magnitude must be at least the low magnitude",
                    ));
                }
                (
                    AggFunc::Llquantize {
                        factor: factor as u16,
                        low: low as u16,
                        high: high as u16,
                        nsteps: nsteps as u16,
                    },
                    1,
                )
            }
            other => {
                return Err(CompileError::new(
                    span,
                    format!("{other}( ) is not an aggregating function"),
                ))
            }
        })
    }

    pub fn aggregate(&mut self, e: &Expr) -> Result<()> {
        let (name, keys, func, args) = match &e.node {
            ExprKind::Aggregate {
                name,
                keys,
                func,
                args,
            } => (name, keys, func, args),
            _ => unreachable!(),
        };
        let (af, nvals) = self.agg_func(&func.node, args, func.span)?;
        let strsize = self.g.opts.strsize;
        // Evaluate keys and the value.
        let mut kvals = Vec::new();
        for k in keys {
            let kv = match &k.node {
                ExprKind::Call { func, args }
                    if matches!(func.node.as_str(), "stack" | "ustack" | "jstack") =>
                {
                    let (user, depth) = self.stack_call(&func.node, args, k.span)?;
                    KeyVal::Stack { user, depth }
                }
                // (Unless a stable probe names another thread's: sched:::on-cpu.)
                ExprKind::Ident(n) if n == "execname" && !self.stable_thread_names(n) => {
                    KeyVal::Comm
                }
                _ => KeyVal::Val(self.expr(k)?),
            };
            kvals.push((kv, k.span));
        }
        let value = if nvals > 0 {
            Some(self.expr(&args[0])?)
        } else {
            None
        };
        let value = match value {
            Some(v) => Some(self.int_of(&v, args[0].span)?),
            None => None,
        };
        // Key layout.
        let mut fields = Vec::new();
        let mut at = 0u32;
        let bounds = self
            .g
            .agg_key_bounds
            .get(&name.node)
            .cloned()
            .unwrap_or_default();
        for (i, (v, _)) in kvals.iter().enumerate() {
            let ty = match v {
                KeyVal::Val(Val::Str(_)) | KeyVal::Comm => {
                    let bound = bounds.get(i).copied().flatten().unwrap_or(strsize);
                    FieldType::Str {
                        size: bound.min(strsize).div_ceil(8) * 8,
                    }
                }
                KeyVal::Val(Val::Int(_, Type::Sym { user: false })) => FieldType::KSym,
                KeyVal::Val(Val::Int(_, Type::Sym { user: true })) => FieldType::USym,
                KeyVal::Val(Val::Int(_, t)) => {
                    let (size, signed) = t.int_parts();
                    FieldType::Int { size, signed }
                }
                KeyVal::Stack { user: true, depth } => FieldType::UStack { depth: *depth },
                KeyVal::Stack { user: false, depth } => FieldType::KStack { depth: *depth },
            };
            let sz = match ty {
                FieldType::Int { .. } => 8,
                _ => ty.size().div_ceil(8) * 8,
            };
            fields.push(Field { offset: at, ty });
            at += sz;
        }
        let key_size = at.max(8);
        // Find or declare the aggregation; every use must agree.
        let idx = match self.g.aggs.iter().position(|a| a.name == name.node) {
            Some(i) => {
                let a = &self.g.aggs[i];
                if a.func != af {
                    return Err(CompileError::new(
                        func.span,
                        format!(
                            "@{} is already a {}( ) aggregation; it cannot also be {}( )",
                            name.node,
                            a.func.name(),
                            af.name()
                        ),
                    ));
                }
                if a.keys
                    .iter()
                    .map(|f| std::mem::discriminant(&f.ty))
                    .ne(fields.iter().map(|f| std::mem::discriminant(&f.ty)))
                {
                    return Err(CompileError::new(
                        e.span,
                        format!("@{} is used with different key types", name.node),
                    ));
                }
                i
            }
            None => {
                let map = format!(
                    "agg_{}",
                    if name.node.is_empty() {
                        "_"
                    } else {
                        &name.node
                    }
                );
                let vs = af.value_size();
                let max =
                    (self.g.opts.aggsize / (key_size + vs + 64) as u64).clamp(16, 1 << 20) as u32;
                self.g.add_map(MapSpec {
                    name: map.clone(),
                    map_type: map_type::PERCPU_HASH,
                    key_size,
                    value_size: vs,
                    max_entries: max,
                });
                self.g.aggs.push(AggDesc {
                    name: name.node.clone(),
                    func: af.clone(),
                    map,
                    keys: fields.clone(),
                    key_size,
                    max_entries: max,
                });
                self.g.aggs.len() - 1
            }
        };
        let map = self.g.map(&self.g.aggs[idx].map.clone());
        // Build the key.
        let koff = self.temp(key_size);
        let key = self.scratch_ptr(koff);
        // Zero the key only when some byte of it is not written below (a string read stops
        // at its NUL; padding): the hash covers every byte.
        let written: u32 = kvals
            .iter()
            .zip(&fields)
            .map(|((v, _), f)| match (v, &f.ty) {
                (KeyVal::Val(Val::Int(..)), FieldType::USym) => 16,
                (KeyVal::Val(Val::Int(..)), FieldType::Int { .. }) => 8,
                (KeyVal::Val(Val::Int(..)), FieldType::KSym) => 8,
                // bpf_get_current_comm pads with NULs up to the size it is given.
                (KeyVal::Comm, FieldType::Str { size }) if *size <= 16 => *size,
                _ => 0,
            })
            .sum();
        if written != key_size {
            self.f.push(Inst::MemZero {
                dst: key,
                len: key_size,
            });
        }
        for ((v, _), f) in kvals.iter().zip(&fields) {
            match v {
                KeyVal::Val(Val::Str(p)) => {
                    let dst = self.f.alu(AluOp::Add, key, Operand::Imm(f.offset as i64));
                    let size = f.ty.size();
                    self.f.call(
                        helper::PROBE_READ_KERNEL_STR,
                        vec![dst.into(), Operand::Imm(size as i64), (*p).into()],
                    );
                }
                KeyVal::Val(Val::Int(r, _)) if f.ty == FieldType::USym => {
                    let pid = self.proc_pid();
                    self.f.store(key, f.offset as i16, pid, Size::DW);
                    self.f.store(key, f.offset as i16 + 8, *r, Size::DW);
                }
                KeyVal::Val(Val::Int(r, _)) => self.f.store(key, f.offset as i16, *r, Size::DW),
                KeyVal::Stack { user, depth } => {
                    let dst = self.f.alu(AluOp::Add, key, Operand::Imm(f.offset as i64));
                    self.write_stack(dst, *user, *depth);
                }
                KeyVal::Comm => {
                    // One helper call instead of comm-to-temporary plus a copy.
                    let dst = self.f.alu(AluOp::Add, key, Operand::Imm(f.offset as i64));
                    let size = f.ty.size().min(16);
                    self.f.call(
                        helper::GET_CURRENT_COMM,
                        vec![dst.into(), Operand::Imm(size as i64)],
                    );
                }
            }
        }
        // Find or create the entry.
        let vs = af.value_size();
        if let Some(init) = self.first_value(&af, value) {
            // Hot path: one lookup, then the update in place. On a miss, one insert of the
            // value the first event gives. BPF_NOEXIST: if the key appeared meanwhile (from
            // another CPU, or from a firing that preempted this one here), the insert fails
            // and the event updates the entry in place instead of overwriting this CPU's
            // slot, which a preempting firing may have filled.
            let have = self.f.label();
            let drop = self.f.label();
            let done = self.f.label();
            let m = self.f.map_ptr(map);
            let p0 = self
                .f
                .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
            let p = self.f.mov(p0);
            self.f.branch(JmpOp::Jne, p0, Operand::Imm(0), have);
            let voff = self.temp(vs);
            let v = self.scratch_ptr(voff);
            for (i, w) in init.into_iter().enumerate() {
                self.f.store(v, 8 * i as i16, w, Size::DW);
            }
            let m = self.f.map_ptr(map);
            let r = self.f.call(
                helper::MAP_UPDATE_ELEM,
                vec![
                    m.into(),
                    key.into(),
                    v.into(),
                    Operand::Imm(1 /* BPF_NOEXIST */),
                ],
            );
            self.f.branch(JmpOp::Jeq, r, Operand::Imm(0), done);
            let m = self.f.map_ptr(map);
            let p1 = self
                .f
                .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
            self.f.push(Inst::Mov {
                dst: p,
                src: p1.into(),
            });
            self.f.branch(JmpOp::Jeq, p1, Operand::Imm(0), drop);
            self.f.push(Inst::Label(have));
            self.update(&af, p, value, Operand::Imm(1));
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(drop));
            self.bump_stat(Stat::AggDrops);
            self.f.push(Inst::Label(done));
            return Ok(());
        }
        let have = self.f.label();
        let drop = self.f.label();
        let done = self.f.label();
        let m = self.f.map_ptr(map);
        let p0 = self
            .f
            .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
        let p = self.f.mov(p0);
        self.f.branch(JmpOp::Jne, p0, Operand::Imm(0), have);
        let zmap = self.g.zeros_map(vs);
        let zero = self.f.map_ptr(zmap);
        let m = self.f.map_ptr(map);
        self.f.call(
            helper::MAP_UPDATE_ELEM,
            vec![
                m.into(),
                key.into(),
                zero.into(),
                Operand::Imm(1 /* BPF_NOEXIST */),
            ],
        );
        let m = self.f.map_ptr(map);
        let p1 = self
            .f
            .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()]);
        self.f.push(Inst::Mov {
            dst: p,
            src: p1.into(),
        });
        self.f.branch(JmpOp::Jeq, p1, Operand::Imm(0), drop);
        self.f.push(Inst::Label(have));
        // The optional increment of quantize/lquantize/llquantize.
        let incr = match (&af, args.len()) {
            (AggFunc::Quantize, 2)
            | (AggFunc::Lquantize { .. }, 5)
            | (AggFunc::Llquantize { .. }, 6) => {
                let e = args.last().unwrap();
                let v = self.expr(e)?;
                Operand::Reg(self.int_of(&v, e.span)?)
            }
            _ => Operand::Imm(1),
        };
        self.update(&af, p, value, incr);
        self.f.push(Inst::Jump(done));
        self.f.push(Inst::Label(drop));
        self.bump_stat(Stat::AggDrops);
        self.f.push(Inst::Label(done));
        let _ = Type::INT;
        Ok(())
    }

    /// The value words an aggregation holds after its first event, for the functions whose
    /// first value is that simple (count, sum, avg, min, max); None for the others.
    fn first_value(&mut self, af: &AggFunc, value: Option<VReg>) -> Option<Vec<Operand>> {
        let one = Operand::Imm(1);
        Some(match (af, value) {
            (AggFunc::Count, _) => vec![one],
            (AggFunc::Sum, Some(v)) => vec![v.into()],
            (AggFunc::Avg, Some(v)) => vec![one, v.into()],
            (AggFunc::Min | AggFunc::Max, Some(v)) => vec![one, self.minmax_word(af, v).into()],
            _ => return None,
        })
    }

    /// An atomic add: a probe program can be preempted on its CPU (syscall tracepoints on
    /// 7.2, sleepable contexts) and another firing update the same per-CPU value meanwhile;
    /// a load, add and store would lose one of the two updates.
    fn add_at(&mut self, p: VReg, off: i16, v: Operand) {
        self.f.push(Inst::AtomicAdd {
            dst: None,
            base: p,
            off,
            val: v,
        });
    }

    /// The word min/max keep for `v` (see `tracer_common::agg::minmax_bias`).
    fn minmax_word(&mut self, af: &AggFunc, v: VReg) -> VReg {
        let bias = minmax_bias(matches!(af, AggFunc::Min));
        self.f.alu(AluOp::Xor, v, Operand::Imm(bias))
    }

    fn update(&mut self, af: &AggFunc, p: VReg, value: Option<VReg>, incr: Operand) {
        match af {
            AggFunc::Count => self.add_at(p, 0, Operand::Imm(1)),
            AggFunc::Sum => self.add_at(p, 0, value.unwrap().into()),
            AggFunc::Avg => {
                self.add_at(p, 0, Operand::Imm(1));
                self.add_at(p, 8, value.unwrap().into());
            }
            AggFunc::Min | AggFunc::Max => {
                // An atomic unsigned maximum of the biased word: a zeroed slot (a key new on
                // this CPU, or cleared) needs no special case, and a preempting firing's
                // update is never overwritten.
                let word = self.minmax_word(af, value.unwrap());
                self.f.push(Inst::AtomicMax {
                    base: p,
                    off: 8,
                    val: word,
                });
                self.add_at(p, 0, Operand::Imm(1));
            }
            AggFunc::Stddev => {
                let v = value.unwrap();
                self.add_at(p, 0, Operand::Imm(1));
                self.add_at(p, 8, v.into());
                // sumsq as u128 in two words: add v² with carry (exact for |v| < 2^32). The
                // fetch-add returns the low word this add found, so the carry is right even
                // when a preempting firing added in between.
                let sq = self.f.alu(AluOp::Mul, v, v);
                let lo = self.f.vreg();
                self.f.push(Inst::AtomicAdd {
                    dst: Some(lo),
                    base: p,
                    off: 16,
                    val: sq.into(),
                });
                let nlo = self.f.alu(AluOp::Add, lo, sq);
                let no_carry = self.f.label();
                self.f.branch(JmpOp::Jge, nlo, lo, no_carry);
                self.add_at(p, 24, Operand::Imm(1));
                self.f.push(Inst::Label(no_carry));
            }
            AggFunc::Quantize => {
                let v = value.unwrap();
                let b = self.quantize_bucket(v);
                self.bump_bucket(p, b, AggFunc::Quantize.words(), incr);
            }
            AggFunc::Lquantize { low, high, step } => {
                let v = value.unwrap();
                let levels = lquantize_levels(*low, *high, *step) as i64;
                let b = self.f.vreg();
                let done = self.f.label();
                let mid = self.f.label();
                self.f.push(Inst::Mov {
                    dst: b,
                    src: Operand::Imm(0),
                });
                self.f.branch(JmpOp::Jslt, v, Operand::Imm(*low), done);
                self.f.push(Inst::Mov {
                    dst: b,
                    src: Operand::Imm(levels + 1),
                });
                self.f.branch(JmpOp::Jslt, v, Operand::Imm(*high), mid);
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(mid));
                let d = self.f.alu(AluOp::Sub, v, Operand::Imm(*low));
                let q = self.f.alu(AluOp::Div, d, Operand::Imm(*step));
                let q1 = self.f.alu(AluOp::Add, q, Operand::Imm(1));
                self.f.push(Inst::Mov {
                    dst: b,
                    src: q1.into(),
                });
                self.f.push(Inst::Label(done));
                self.bump_bucket(p, b, af.words(), incr);
            }
            AggFunc::Llquantize {
                factor,
                low,
                high,
                nsteps,
            } => {
                let v = value.unwrap();
                let bounds = llquantize_bounds(*factor, *low, *high, *nsteps);
                // Linear scan from the top: the first bound <= v names the bucket.
                let b = self.f.imm(0);
                let done = self.f.label();
                for (i, bound) in bounds.iter().enumerate().rev() {
                    let next = self.f.label();
                    self.f.branch(JmpOp::Jslt, v, Operand::Imm(*bound), next);
                    self.f.push(Inst::Mov {
                        dst: b,
                        src: Operand::Imm(i as i64 + 1),
                    });
                    self.f.push(Inst::Jump(done));
                    self.f.push(Inst::Label(next));
                }
                self.f.push(Inst::Label(done));
                self.bump_bucket(p, b, af.words(), incr);
            }
        }
    }

    /// quantize bucket of a signed value: 63 for 0, 63 ± (floor(log2|v|) + 1) otherwise.
    fn quantize_bucket(&mut self, v: VReg) -> VReg {
        let zero = QUANTIZE_ZERO_BUCKET as i64;
        let out = self.f.imm(zero);
        let done = self.f.label();
        self.f.branch(JmpOp::Jeq, v, Operand::Imm(0), done);
        let mag = self.f.mov(v);
        let pos = self.f.label();
        self.f.branch(JmpOp::Jsgt, v, Operand::Imm(0), pos);
        self.f.push(Inst::Neg { dst: mag, a: v });
        self.f.push(Inst::Label(pos));
        // log2 by binary search over shifts.
        let lg = self.f.imm(0);
        for shift in [32, 16, 8, 4, 2, 1] {
            let skip = self.f.label();
            let hi = self.f.alu(AluOp::Rsh, mag, Operand::Imm(shift));
            self.f.branch(JmpOp::Jeq, hi, Operand::Imm(0), skip);
            self.f.push(Inst::Mov {
                dst: mag,
                src: hi.into(),
            });
            let nl = self.f.alu(AluOp::Add, lg, Operand::Imm(shift));
            self.f.push(Inst::Mov {
                dst: lg,
                src: nl.into(),
            });
            self.f.push(Inst::Label(skip));
        }
        let neg = self.f.label();
        self.f.branch(JmpOp::Jslt, v, Operand::Imm(0), neg);
        let up = self.f.alu(AluOp::Add, lg, Operand::Imm(zero + 1));
        self.f.push(Inst::Mov {
            dst: out,
            src: up.into(),
        });
        self.f.push(Inst::Jump(done));
        self.f.push(Inst::Label(neg));
        let base = self.f_zero(zero - 1);
        let down = self.f.alu(AluOp::Sub, base, lg);
        self.f.push(Inst::Mov {
            dst: out,
            src: down.into(),
        });
        self.f.push(Inst::Label(done));
        out
    }

    fn f_zero(&mut self, v: i64) -> VReg {
        self.f.imm(v)
    }

    /// `buckets[b] += incr`, with `b` bounded for the verifier.
    fn bump_bucket(&mut self, p: VReg, b: VReg, nbuckets: u32, incr: Operand) {
        let skip = self.f.label();
        self.f
            .branch(JmpOp::Jgt, b, Operand::Imm(nbuckets as i64 - 1), skip);
        let off = self.f.alu(AluOp::Lsh, b, Operand::Imm(3));
        let slot = self.f.alu(AluOp::Add, p, off);
        self.add_at(slot, 0, incr);
        self.f.push(Inst::Label(skip));
    }
}

/// The longest string `e` can be, when that is known before running: `execname` (the
/// kernel's 16-byte comm), the probe's names (DTrace's own limits: DTRACE_FUNCNAMELEN 128,
/// the others 64) and string literals.
fn str_bound(e: &Expr) -> Option<u32> {
    match &e.node {
        ExprKind::Ident(n) if n == "execname" => Some(16),
        ExprKind::Ident(n) if n == "probefunc" => Some(128),
        ExprKind::Ident(n) if matches!(n.as_str(), "probeprov" | "probemod" | "probename") => {
            Some(64)
        }
        ExprKind::Str(s) => Some(s.len() as u32 + 1),
        ExprKind::Cond { then, els, .. } => Some(str_bound(then)?.max(str_bound(els)?)),
        _ => None,
    }
}

/// For every aggregation, the string bound of each key position over all its uses.
pub(crate) fn key_bounds(
    clauses: &[&crate::syntax::ast::Clause],
) -> std::collections::BTreeMap<String, Vec<Option<u32>>> {
    let mut out: std::collections::BTreeMap<String, Vec<Option<u32>>> = Default::default();
    let mut visit = |e: &Expr| {
        if let ExprKind::Aggregate { name, keys, .. } = &e.node {
            let these: Vec<Option<u32>> = keys.iter().map(str_bound).collect();
            let entry = out
                .entry(name.node.clone())
                .or_insert_with(|| these.clone());
            for (i, b) in these.into_iter().enumerate() {
                match entry.get_mut(i) {
                    Some(slot) => *slot = slot.zip(b).map(|(x, y)| x.max(y)),
                    None => entry.push(b),
                }
            }
        }
    };
    let mut stack: Vec<&crate::syntax::ast::Stmt> =
        clauses.iter().flat_map(|c| c.body.iter()).collect();
    while let Some(s) = stack.pop() {
        match s {
            crate::syntax::ast::Stmt::Expr(e) => crate::syntax::ast::walk(e, &mut visit),
            crate::syntax::ast::Stmt::If {
                cond, then, els, ..
            } => {
                crate::syntax::ast::walk(cond, &mut visit);
                stack.extend(then.iter());
                stack.extend(els.iter());
            }
            _ => {}
        }
    }
    out
}
