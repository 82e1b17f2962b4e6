//! Subroutines that return values: string functions, copyin/copyinstr, byte order, rand,
//! speculation(). Their arity, argument classes and result types are the signature table's
//! (`sema::signatures`); sema checks calls before they get here.

use super::expr::Val;
use super::{CompileError, Lower, Result};
use crate::sema::signatures;
use crate::syntax::ast::{Expr, Span};
use tracer_common::record::Fault;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Operand, VReg};

/// strstr/index/rindex with a computed needle search at most this many bytes: the verifier
/// walks the nested loop for every (start, offset) pair, so its cost grows with the square
/// of this bound. A literal needle searches the whole string.
const STRSTR_MAX: i64 = 32;

/// A literal needle's bytes, and how far to search.
fn literal_needle(e: &Expr, strsize: i64) -> (Option<Vec<u8>>, u32) {
    match &e.node {
        crate::syntax::ast::ExprKind::Str(s) if (s.len() as i64) < strsize => {
            (Some(s.as_bytes().to_vec()), strsize as u32)
        }
        _ => (None, strsize.min(STRSTR_MAX) as u32),
    }
}

impl<'g, 'a> Lower<'g, 'a> {
    fn str_arg(&mut self, e: &Expr) -> Result<VReg> {
        match self.expr(e)? {
            Val::Str(p) => Ok(p),
            Val::Int(..) => Err(CompileError::new(e.span, "expected a string argument")),
        }
    }

    fn int_arg(&mut self, e: &Expr) -> Result<VReg> {
        let v = self.expr(e)?;
        self.int_of(&v, e.span)
    }

    fn new_string(&mut self) -> VReg {
        let size = self.g.opts.strsize;
        let off = self.temp(size);
        self.scratch_ptr(off)
    }

    /// Clamp a value into [0, max] so that the verifier can bound pointer arithmetic.
    pub(crate) fn clamp(&mut self, v: VReg, max: i64) -> VReg {
        let out = self.f.mov(v);
        let lo = self.f.label();
        let done = self.f.label();
        self.f.branch(JmpOp::Jslt, v, Operand::Imm(0), lo);
        self.f.branch(JmpOp::Jsle, v, Operand::Imm(max), done);
        self.f.push(Inst::Mov {
            dst: out,
            src: Operand::Imm(max),
        });
        self.f.push(Inst::Jump(done));
        self.f.push(Inst::Label(lo));
        self.f.push(Inst::Mov {
            dst: out,
            src: Operand::Imm(0),
        });
        self.f.push(Inst::Label(done));
        // A mask the verifier understands, for good measure (max+1 is rounded up to 2^k).
        let mask = ((max + 1) as u64).next_power_of_two() as i64 - 1;
        self.f.alu(AluOp::And, out, Operand::Imm(mask))
    }

    /// Copy `src` (NUL-terminated) into `dst + at` with room `room`.
    fn copy_str_at(&mut self, dst: VReg, at: VReg, src: VReg, room: VReg) {
        let p = self.f.alu(AluOp::Add, dst, at);
        self.f.call(
            helper::PROBE_READ_KERNEL_STR,
            vec![p.into(), room.into(), src.into()],
        );
    }

    pub fn lltostr(&mut self, v: VReg) -> Val {
        // Digits are produced backwards into a 24-byte window, then copied out.
        let out = self.new_string();
        let off = self.temp(32);
        let tmp = self.scratch_ptr(off);
        self.f.push(Inst::MemZero { dst: tmp, len: 32 });
        let neg = self.f.alu(AluOp::Rsh, v, Operand::Imm(63));
        let mut x = self.f.mov(v);
        let pos = self.f.label();
        self.f.branch(JmpOp::Jsge, v, Operand::Imm(0), pos);
        self.f.push(Inst::Neg { dst: x, a: v });
        self.f.push(Inst::Label(pos));
        // 20 digits cover u64; unrolled, writing from the end; `start` tracks the first digit.
        let start = self.f.imm(29);
        for i in 0..20 {
            let pos_i = 29 - i;
            let d = self.f.alu(AluOp::Mod, x, Operand::Imm(10));
            let c = self.f.alu(AluOp::Add, d, Operand::Imm(b'0' as i64));
            self.f.store(tmp, pos_i as i16, c, Size::B);
            if i > 0 {
                let keep = self.f.label();
                self.f.branch(JmpOp::Jeq, x, Operand::Imm(0), keep);
                self.f.push(Inst::Mov {
                    dst: start,
                    src: Operand::Imm(pos_i),
                });
                self.f.push(Inst::Label(keep));
            }
            x = self.f.alu(AluOp::Div, x, Operand::Imm(10));
        }
        let no_sign = self.f.label();
        self.f.branch(JmpOp::Jeq, neg, Operand::Imm(0), no_sign);
        let s1 = self.f.alu(AluOp::Sub, start, Operand::Imm(1));
        self.f.push(Inst::Mov {
            dst: start,
            src: s1.into(),
        });
        let at = self.clamp(start, 29);
        let p = self.f.alu(AluOp::Add, tmp, at);
        self.f.store(p, 0, Operand::Imm(b'-' as i64), Size::B);
        self.f.push(Inst::Label(no_sign));
        let at = self.clamp(start, 29);
        let p = self.f.alu(AluOp::Add, tmp, at);
        self.f.call(
            helper::PROBE_READ_KERNEL_STR,
            vec![out.into(), Operand::Imm(32), p.into()],
        );
        Val::Str(out)
    }

    /// A subroutine's value. Sema checked its arity; its result type is the signature table's.
    pub fn call_value(&mut self, name: &str, args: &[Expr], span: Span) -> Result<Val> {
        let strsize = self.g.opts.strsize as i64;
        let sig = signatures::subroutine(name).ok_or_else(|| {
            CompileError::new(span, format!("{name}( ) is not a known subroutine"))
        })?;
        let result = sig.result();
        match name {
            "strlen" => {
                let s = self.str_arg(&args[0])?;
                let d = self.f.vreg();
                let tmp = self.launder_slot();
                self.f.push(Inst::StrLen {
                    dst: d,
                    s,
                    max: strsize as u32,
                    tmp,
                });
                Ok(Val::Int(d, result))
            }
            "strjoin" => {
                let a = self.str_arg(&args[0])?;
                let b = self.str_arg(&args[1])?;
                // Twice strsize, so that the second copy's bounds verify whatever the first
                // string's length; the result is cut at strsize.
                let off = self.temp(2 * strsize as u32);
                let out = self.scratch_ptr(off);
                let n = self.f.vreg();
                let tmp = self.launder_slot();
                self.f.push(Inst::StrLen {
                    dst: n,
                    s: a,
                    max: strsize as u32 - 1,
                    tmp,
                });
                self.f.call(
                    helper::PROBE_READ_KERNEL_STR,
                    vec![out.into(), Operand::Imm(strsize), a.into()],
                );
                let at = self.clamp(n, strsize - 1);
                let full = self.f_imm(strsize);
                let room = self.f.alu(AluOp::Sub, full, at);
                let room = self.clamp(room, strsize);
                self.copy_str_at(out, at, b, room);
                self.f
                    .store(out, strsize as i16 - 1, Operand::Imm(0), Size::B);
                Ok(Val::Str(out))
            }
            "substr" => {
                let s = self.str_arg(&args[0])?;
                let start = self.int_arg(&args[1])?;
                let len = self.f.vreg();
                let tmp = self.launder_slot();
                self.f.push(Inst::StrLen {
                    dst: len,
                    s,
                    max: strsize as u32,
                    tmp,
                });
                // Negative start counts from the end (illumos), clamped at 0.
                let st = self.f.mov(start);
                let nonneg = self.f.label();
                self.f.branch(JmpOp::Jsge, start, Operand::Imm(0), nonneg);
                let from_end = self.f.alu(AluOp::Add, len, start);
                self.f.push(Inst::Mov {
                    dst: st,
                    src: from_end.into(),
                });
                self.f.push(Inst::Label(nonneg));
                let st = self.clamp(st, strsize - 1);
                let out = self.new_string();
                self.f.store(out, 0, Operand::Imm(0), Size::DW);
                let empty = self.f.label();
                self.f.branch(JmpOp::Jge, st, len, empty);
                let room = match args.get(2) {
                    Some(n) => {
                        let n = self.int_arg(n)?;
                        let r = self.f.alu(AluOp::Add, n, Operand::Imm(1));
                        self.clamp(r, strsize)
                    }
                    None => self.f_imm(strsize),
                };
                let room_ok = self.f.label();
                self.f.branch(JmpOp::Jsgt, room, Operand::Imm(0), room_ok);
                self.f.push(Inst::Jump(empty));
                self.f.push(Inst::Label(room_ok));
                let src = self.f.alu(AluOp::Add, s, st);
                self.f.call(
                    helper::PROBE_READ_KERNEL_STR,
                    vec![out.into(), room.into(), src.into()],
                );
                self.f.push(Inst::Label(empty));
                Ok(Val::Str(out))
            }
            "strchr" | "strrchr" => {
                let s = self.str_arg(&args[0])?;
                let c = self.int_arg(&args[1])?;
                let i = self.f.vreg();
                let tmp = self.launder_slot();
                self.f.push(Inst::StrChr {
                    dst: i,
                    s,
                    c: c.into(),
                    max: strsize as u32,
                    reverse: name == "strrchr",
                    tmp,
                });
                Ok(self.suffix_at(s, i))
            }
            "strstr" => {
                let h = self.str_arg(&args[0])?;
                let n = self.str_arg(&args[1])?;
                let i = self.f.vreg();
                let (literal, max) = literal_needle(&args[1], strsize);
                let tmp = self.launder_slot();
                self.f.push(Inst::StrStr {
                    dst: i,
                    hay: h,
                    needle: n,
                    start: Operand::Imm(0),
                    max,
                    reverse: false,
                    tmp,
                    literal,
                });
                Ok(self.suffix_at(h, i))
            }
            "index" | "rindex" => {
                let h = self.str_arg(&args[0])?;
                let n = self.str_arg(&args[1])?;
                let start = match args.get(2) {
                    Some(e) => {
                        let s = self.int_arg(e)?;
                        self.clamp(s, strsize - 1).into()
                    }
                    None => Operand::Imm(0),
                };
                let i = self.f.vreg();
                let (literal, max) = literal_needle(&args[1], strsize);
                let tmp = self.launder_slot();
                self.f.push(Inst::StrStr {
                    dst: i,
                    hay: h,
                    needle: n,
                    start,
                    max,
                    reverse: name == "rindex",
                    tmp,
                    literal,
                });
                Ok(Val::Int(i, result))
            }
            "basename" | "dirname" => {
                let s = self.str_arg(&args[0])?;
                self.path_part(s, name == "basename")
            }
            "lltostr" => {
                let v = self.int_arg(&args[0])?;
                Ok(self.lltostr(v))
            }
            "copyinstr" => {
                let p = self.int_arg(&args[0])?;
                let size = match args.get(1) {
                    Some(n) => {
                        let n = self.int_arg(n)?;
                        let n1 = self.f.alu(AluOp::Add, n, Operand::Imm(1));
                        self.clamp(n1, strsize).into()
                    }
                    None => Operand::Imm(strsize),
                };
                let out = self.new_string();
                self.f.store(out, 0, Operand::Imm(0), Size::DW);
                let r = self.f.call(
                    helper::PROBE_READ_USER_STR,
                    vec![out.into(), size, p.into()],
                );
                let ok = self.f.label();
                self.f.branch(JmpOp::Jsge, r, Operand::Imm(0), ok);
                self.fault(Fault::BadAddr, p.into());
                self.f.push(Inst::Label(ok));
                Ok(Val::Str(out))
            }
            "copyin" => {
                let p = self.int_arg(&args[0])?;
                let n = match &args[1].node {
                    crate::syntax::ast::ExprKind::Int { value, .. } => {
                        (*value as u32).clamp(1, strsize as u32)
                    }
                    _ => {
                        return Err(CompileError::new(
                            args[1].span,
                            "copyin( ) size must be a constant",
                        ))
                    }
                };
                let off = self.temp(n);
                let out = self.scratch_ptr(off);
                let r = self.f.call(
                    helper::PROBE_READ_USER,
                    vec![out.into(), Operand::Imm(n as i64), p.into()],
                );
                let ok = self.f.label();
                self.f.branch(JmpOp::Jeq, r, Operand::Imm(0), ok);
                self.fault(Fault::BadAddr, p.into());
                self.f.push(Inst::Label(ok));
                Ok(Val::Int(out, result))
            }
            "htons" | "ntohs" | "htonl" | "ntohl" | "htonll" | "ntohll" => {
                let v = self.int_arg(&args[0])?;
                let bits = match name {
                    "htons" | "ntohs" => 16,
                    "htonl" | "ntohl" => 32,
                    _ => 64,
                };
                let d = self.f.vreg();
                self.f.push(Inst::ToBe { dst: d, a: v, bits });
                Ok(Val::Int(d, result))
            }
            "func" | "sym" | "ufunc" | "usym" => {
                let a = self.int_arg(&args[0])?;
                Ok(Val::Int(a, result))
            }
            "rand" => Ok(Val::Int(
                self.f.call(helper::GET_PRANDOM_U32, vec![]),
                result,
            )),
            "speculation" => Ok(Val::Int(self.speculation(), result)),
            "inet_ntoa" => {
                let p = self.int_arg(&args[0])?;
                self.inet_ntoa(p)
            }
            "stack" | "ustack" | "jstack" => Err(CompileError::new(
                span,
                format!("{name}( ) can be used as an action or an aggregation key only"),
            )),
            _ => Err(CompileError::new(
                span,
                format!("{name}( ) is not a known subroutine"),
            )),
        }
    }

    /// 8 bytes of scratch for a looping pseudo-op to launder its result through.
    fn launder_slot(&mut self) -> VReg {
        let off = self.temp(8);
        self.scratch_ptr(off)
    }

    fn f_imm(&mut self, v: i64) -> VReg {
        self.f.imm(v)
    }

    /// `s + i` as a string, or "" (a NULL result prints as empty) when `i` is -1.
    fn suffix_at(&mut self, s: VReg, i: VReg) -> Val {
        let out = self.new_string();
        self.f.store(out, 0, Operand::Imm(0), Size::DW);
        let none = self.f.label();
        self.f.branch(JmpOp::Jslt, i, Operand::Imm(0), none);
        let at = self.clamp(i, self.g.opts.strsize as i64 - 1);
        let src = self.f.alu(AluOp::Add, s, at);
        self.f.call(
            helper::PROBE_READ_KERNEL_STR,
            vec![
                out.into(),
                Operand::Imm(self.g.opts.strsize as i64),
                src.into(),
            ],
        );
        self.f.push(Inst::Label(none));
        Val::Str(out)
    }

    /// basename/dirname with DTrace's rules: trailing slashes ignored, "" → ".", "/" → "/".
    fn path_part(&mut self, s: VReg, base: bool) -> Result<Val> {
        let strsize = self.g.opts.strsize as i64;
        // Work on a copy with trailing slashes removed (keeping a lone "/").
        let len = self.f.vreg();
        let tmp = self.launder_slot();
        self.f.push(Inst::StrLen {
            dst: len,
            s,
            max: strsize as u32 - 1,
            tmp,
        });
        let out = self.new_string();
        let work = self.new_string();
        self.f.call(
            helper::PROBE_READ_KERNEL_STR,
            vec![work.into(), Operand::Imm(strsize), s.into()],
        );
        let end = self.f.mov(len);
        // Strip up to 8 trailing slashes (unrolled; longer runs are vanishingly rare).
        for _ in 0..8 {
            let stop = self.f.label();
            self.f.branch(JmpOp::Jle, end, Operand::Imm(1), stop);
            let last = self.f.alu(AluOp::Sub, end, Operand::Imm(1));
            let at = self.clamp(last, strsize - 1);
            let p = self.f.alu(AluOp::Add, work, at);
            let c = self.f.load(p, 0, Size::B);
            self.f
                .branch(JmpOp::Jne, c, Operand::Imm(b'/' as i64), stop);
            self.f.store(p, 0, Operand::Imm(0), Size::B);
            self.f.push(Inst::Mov {
                dst: end,
                src: last.into(),
            });
            self.f.push(Inst::Label(stop));
        }
        let slash = self.f.vreg();
        let tmp = self.launder_slot();
        self.f.push(Inst::StrChr {
            dst: slash,
            s: work,
            c: Operand::Imm(b'/' as i64),
            max: strsize as u32,
            reverse: true,
            tmp,
        });
        let done = self.f.label();
        let no_slash = self.f.label();
        self.f.branch(JmpOp::Jslt, slash, Operand::Imm(0), no_slash);
        if base {
            // "/" alone stays "/".
            let not_root = self.f.label();
            self.f.branch(JmpOp::Jne, end, Operand::Imm(1), not_root);
            self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![out.into(), Operand::Imm(strsize), work.into()],
            );
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(not_root));
            let from = self.f.alu(AluOp::Add, slash, Operand::Imm(1));
            let at = self.clamp(from, strsize - 1);
            let src = self.f.alu(AluOp::Add, work, at);
            self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![out.into(), Operand::Imm(strsize), src.into()],
            );
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(no_slash));
            self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![out.into(), Operand::Imm(strsize), work.into()],
            );
        } else {
            // dirname: everything before the last slash, "/" for a root-level name.
            let keep = self.f.vreg();
            let nonzero = self.f.label();
            self.f.push(Inst::Mov {
                dst: keep,
                src: slash.into(),
            });
            self.f.branch(JmpOp::Jne, slash, Operand::Imm(0), nonzero);
            self.f.push(Inst::Mov {
                dst: keep,
                src: Operand::Imm(1),
            });
            self.f.push(Inst::Label(nonzero));
            let room = self.f.alu(AluOp::Add, keep, Operand::Imm(1));
            let room = self.clamp(room, strsize);
            let ok = self.f.label();
            self.f.branch(JmpOp::Jsgt, room, Operand::Imm(0), ok);
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(ok));
            self.f.call(
                helper::PROBE_READ_KERNEL_STR,
                vec![out.into(), room.into(), work.into()],
            );
            self.f.push(Inst::Jump(done));
            self.f.push(Inst::Label(no_slash));
            self.f.store(out, 0, Operand::Imm(b'.' as i64), Size::DW);
        }
        self.f.push(Inst::Label(done));
        // basename("") and dirname("") are ".".
        let nonempty = self.f.label();
        self.f.branch(JmpOp::Jne, len, Operand::Imm(0), nonempty);
        self.f.store(out, 0, Operand::Imm(b'.' as i64), Size::DW);
        self.f.push(Inst::Label(nonempty));
        Ok(Val::Str(out))
    }

    /// inet_ntoa(ipaddr_t *): dotted quad of the 4 bytes at `p`.
    fn inet_ntoa(&mut self, p: VReg) -> Result<Val> {
        let off = self.temp(8);
        let buf = self.scratch_ptr(off);
        let r = self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![buf.into(), Operand::Imm(4), p.into()],
        );
        let ok = self.f.label();
        self.f.branch(JmpOp::Jeq, r, Operand::Imm(0), ok);
        self.fault(Fault::BadAddr, p.into());
        self.f.push(Inst::Label(ok));
        let out = self.new_string();
        let mut pos = self.f.imm(0);
        for i in 0..4 {
            let b = self.f.load(buf, i, Size::B);
            // up to three digits, no leading zeros
            let hundreds = self.f.alu(AluOp::Div, b, Operand::Imm(100));
            let tens = self.f.alu(AluOp::Div, b, Operand::Imm(10));
            let tens = self.f.alu(AluOp::Mod, tens, Operand::Imm(10));
            let ones = self.f.alu(AluOp::Mod, b, Operand::Imm(10));
            for (digit, threshold) in [(hundreds, 100), (tens, 10), (ones, 0)] {
                let skip = self.f.label();
                if threshold > 0 {
                    self.f.branch(JmpOp::Jlt, b, Operand::Imm(threshold), skip);
                }
                let at = self.clamp(pos, 15);
                let dst = self.f.alu(AluOp::Add, out, at);
                let c = self.f.alu(AluOp::Add, digit, Operand::Imm(b'0' as i64));
                self.f.store(dst, 0, c, Size::B);
                let np = self.f.alu(AluOp::Add, pos, Operand::Imm(1));
                self.f.push(Inst::Mov {
                    dst: pos,
                    src: np.into(),
                });
                self.f.push(Inst::Label(skip));
            }
            let at = self.clamp(pos, 15);
            let dst = self.f.alu(AluOp::Add, out, at);
            self.f.store(
                dst,
                0,
                Operand::Imm(if i < 3 { b'.' as i64 } else { 0 }),
                Size::B,
            );
            pos = self.f.alu(AluOp::Add, pos, Operand::Imm(1));
        }
        Ok(Val::Str(out))
    }
}
