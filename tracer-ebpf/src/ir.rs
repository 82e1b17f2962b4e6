//! The IR the front end lowers D into: straight-line code over unlimited virtual registers,
//! with forward branches only. Loops exist only inside pseudo-instructions (string and memory
//! operations) that the emitter expands with fixed registers, so every virtual register's
//! live range is an interval of the instruction list (see `regalloc`).

use crate::insn::{AluOp, JmpOp, Size};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VReg(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

/// Index into the object's map list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    Reg(VReg),
    Imm(i64),
}

impl From<VReg> for Operand {
    fn from(v: VReg) -> Operand {
        Operand::Reg(v)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Inst {
    /// `dst = src`
    Mov {
        dst: VReg,
        src: Operand,
    },
    /// `dst = a op b` (64-bit)
    Alu {
        op: AluOp,
        dst: VReg,
        a: Operand,
        b: Operand,
    },
    /// `dst = -a`
    Neg {
        dst: VReg,
        a: VReg,
    },
    /// `dst = bswap_be(a)` to big endian of `bits` width (htons/htonl/htonll).
    ToBe {
        dst: VReg,
        a: VReg,
        bits: u32,
    },
    /// `dst = *(size *)(base + off)`, zero-extended.
    Load {
        dst: VReg,
        base: VReg,
        off: i16,
        size: Size,
    },
    /// `*(u64 *)(base + off) += val`, atomically; with `dst`, `dst` = the value before
    /// (BPF_FETCH, Linux 5.12+).
    AtomicAdd {
        dst: Option<VReg>,
        base: VReg,
        off: i16,
        val: Operand,
    },
    /// `dst = *(u64 *)(base + off)` and `*(u64 *)(base + off) = val`, as one atomic step
    /// (BPF_XCHG, Linux 5.12+).
    AtomicXchg {
        dst: VReg,
        base: VReg,
        off: i16,
        val: Operand,
    },
    /// `*(u64 *)(base + off) = max(that, val)`, unsigned and atomic: a pseudo-op, a bounded
    /// compare-and-exchange loop (BPF_CMPXCHG, Linux 5.12+).
    AtomicMax {
        base: VReg,
        off: i16,
        val: VReg,
    },
    /// `*(size *)(base + off) = src`
    Store {
        base: VReg,
        off: i16,
        src: Operand,
        size: Size,
    },
    /// `dst = fp - offset`: the address of a stack buffer reserved with `Function::stack_buffer`.
    StackAddr {
        dst: VReg,
        offset: u32,
    },
    /// `dst = &map` (LD_IMM64 with a map relocation).
    MapPtr {
        dst: VReg,
        map: MapId,
    },
    /// Call a kernel helper. Arguments go to r1..r5, the result comes from r0.
    Call {
        helper: i32,
        args: Vec<Operand>,
        dst: Option<VReg>,
    },
    /// `if a cond b goto target` (forward only)
    Branch {
        cond: JmpOp,
        a: VReg,
        b: Operand,
        target: Label,
    },
    /// `goto target` (forward only)
    Jump(Label),
    Label(Label),
    /// Return from the program with this value.
    Ret(Operand),
    /// The following instructions come from this D source line (for verifier diagnostics).
    Line(u32),
    /// Zero `len` bytes at `dst` (len a multiple of 8).
    MemZero {
        dst: VReg,
        len: u32,
    },
    /// Copy `len` bytes (a multiple of 8) from `src` to `dst`; both are map-value or stack
    /// pointers.
    MemCopy {
        dst: VReg,
        src: VReg,
        len: u32,
    },
    /// `dst = strcmp(a, b)` over at most `max` bytes: <0, 0, >0.
    StrCmp {
        dst: VReg,
        a: VReg,
        b: VReg,
        max: u32,
    },
    /// `dst = strlen(s)`, at most `max`. `tmp` (in this and the other looping pseudo-ops)
    /// points to 8 bytes of map memory used to make the result imprecise for the verifier,
    /// so that the states leaving the loop merge instead of multiplying.
    StrLen {
        dst: VReg,
        s: VReg,
        max: u32,
        tmp: VReg,
    },
    /// `dst = index of first occurrence of byte c in s at or after start, or -1`, at most `max`
    /// (`strchr`, `index` on one char). `reverse` searches from the end (`strrchr`).
    StrChr {
        dst: VReg,
        s: VReg,
        c: Operand,
        max: u32,
        reverse: bool,
        tmp: VReg,
    },
    /// `dst = offset of needle in hay at or after `start`, or -1` (`strstr`, `index`, `rindex`).
    /// When the needle is a literal, `literal` holds its bytes and the search compares them
    /// as immediates: one loop instead of two, so it can cover the whole string.
    StrStr {
        dst: VReg,
        hay: VReg,
        needle: VReg,
        start: Operand,
        max: u32,
        reverse: bool,
        tmp: VReg,
        literal: Option<Vec<u8>>,
    },
}

impl Inst {
    /// True when the instruction clobbers r0..r5 (helper calls and expanded pseudo-ops).
    pub fn clobbers_caller_saved(&self) -> bool {
        matches!(
            self,
            Inst::Call { .. }
                | Inst::MemZero { .. }
                | Inst::AtomicMax { .. }
                | Inst::MemCopy { .. }
                | Inst::StrCmp { .. }
                | Inst::StrLen { .. }
                | Inst::StrChr { .. }
                | Inst::StrStr { .. }
        )
    }

    /// Virtual registers read.
    pub fn uses(&self) -> Vec<VReg> {
        let mut v = Vec::new();
        let op = |o: &Operand| {
            if let Operand::Reg(r) = o {
                Some(*r)
            } else {
                None
            }
        };
        match self {
            Inst::Mov { src, .. } => v.extend(op(src)),
            Inst::Alu { a, b, .. } => {
                v.extend(op(a));
                v.extend(op(b));
            }
            Inst::Neg { a, .. } | Inst::ToBe { a, .. } => v.push(*a),
            Inst::Load { base, .. } => v.push(*base),
            Inst::AtomicAdd { base, val, .. } | Inst::AtomicXchg { base, val, .. } => {
                v.push(*base);
                v.extend(op(val));
            }
            Inst::Store { base, src, .. } => {
                v.push(*base);
                v.extend(op(src));
            }
            Inst::Call { args, .. } => v.extend(args.iter().filter_map(op)),
            Inst::Branch { a, b, .. } => {
                v.push(*a);
                v.extend(op(b));
            }
            Inst::Ret(o) => v.extend(op(o)),
            Inst::MemZero { dst, .. } => v.push(*dst),
            Inst::AtomicMax { base, val, .. } => v.extend([*base, *val]),
            Inst::MemCopy { dst, src, .. } => v.extend([*dst, *src]),
            Inst::StrCmp { a, b, .. } => v.extend([*a, *b]),
            Inst::StrLen { s, tmp, .. } => v.extend([*s, *tmp]),
            Inst::StrChr { s, c, tmp, .. } => {
                v.push(*s);
                v.extend(op(c));
                v.push(*tmp);
            }
            Inst::StrStr {
                hay,
                needle,
                start,
                tmp,
                ..
            } => {
                v.extend([*hay, *needle]);
                v.extend(op(start));
                v.push(*tmp);
            }
            Inst::StackAddr { .. }
            | Inst::MapPtr { .. }
            | Inst::Jump(_)
            | Inst::Label(_)
            | Inst::Line(_) => {}
        }
        v
    }

    /// The virtual register written, if any.
    pub fn def(&self) -> Option<VReg> {
        match self {
            Inst::Mov { dst, .. }
            | Inst::Alu { dst, .. }
            | Inst::Neg { dst, .. }
            | Inst::ToBe { dst, .. }
            | Inst::Load { dst, .. }
            | Inst::StackAddr { dst, .. }
            | Inst::MapPtr { dst, .. }
            | Inst::StrCmp { dst, .. }
            | Inst::StrLen { dst, .. }
            | Inst::StrChr { dst, .. }
            | Inst::StrStr { dst, .. }
            | Inst::AtomicXchg { dst, .. } => Some(*dst),
            Inst::Call { dst, .. } | Inst::AtomicAdd { dst, .. } => *dst,
            _ => None,
        }
    }
}

/// One eBPF program under construction.
#[derive(Debug, Clone, Default)]
pub struct Function {
    pub name: String,
    pub insts: Vec<Inst>,
    next_vreg: u32,
    next_label: u32,
    /// Bytes of stack reserved for buffers (the register allocator's spill slots go below).
    pub stack_used: u32,
}

impl Function {
    /// A new function. The top 24 bytes of its stack are reserved for the emitter's
    /// pseudo-op expansions.
    pub fn new(name: impl Into<String>) -> Function {
        Function {
            name: name.into(),
            stack_used: 24,
            ..Default::default()
        }
    }

    /// The context pointer (r1 at entry) is always v0.
    pub const CTX: VReg = VReg(0);

    pub fn vreg(&mut self) -> VReg {
        self.next_vreg += 1;
        VReg(self.next_vreg)
    }

    pub fn vreg_count(&self) -> u32 {
        self.next_vreg + 1
    }

    pub fn label(&mut self) -> Label {
        self.next_label += 1;
        Label(self.next_label)
    }

    /// Reserve `len` bytes (rounded up to 8) of stack; returns the offset below the frame
    /// pointer of its start.
    pub fn stack_buffer(&mut self, len: u32) -> u32 {
        self.stack_used += len.div_ceil(8) * 8;
        self.stack_used
    }

    pub fn push(&mut self, i: Inst) {
        self.insts.push(i);
    }

    pub fn mov(&mut self, src: impl Into<Operand>) -> VReg {
        let dst = self.vreg();
        self.push(Inst::Mov {
            dst,
            src: src.into(),
        });
        dst
    }

    pub fn imm(&mut self, v: i64) -> VReg {
        self.mov(Operand::Imm(v))
    }

    pub fn alu(&mut self, op: AluOp, a: impl Into<Operand>, b: impl Into<Operand>) -> VReg {
        let dst = self.vreg();
        self.push(Inst::Alu {
            op,
            dst,
            a: a.into(),
            b: b.into(),
        });
        dst
    }

    pub fn load(&mut self, base: VReg, off: i16, size: Size) -> VReg {
        let dst = self.vreg();
        self.push(Inst::Load {
            dst,
            base,
            off,
            size,
        });
        dst
    }

    pub fn store(&mut self, base: VReg, off: i16, src: impl Into<Operand>, size: Size) {
        self.push(Inst::Store {
            base,
            off,
            src: src.into(),
            size,
        });
    }

    pub fn call(&mut self, helper: i32, args: Vec<Operand>) -> VReg {
        let dst = self.vreg();
        self.push(Inst::Call {
            helper,
            args,
            dst: Some(dst),
        });
        dst
    }

    pub fn map_ptr(&mut self, map: MapId) -> VReg {
        let dst = self.vreg();
        self.push(Inst::MapPtr { dst, map });
        dst
    }

    pub fn branch(&mut self, cond: JmpOp, a: VReg, b: impl Into<Operand>, target: Label) {
        self.push(Inst::Branch {
            cond,
            a,
            b: b.into(),
            target,
        });
    }

    pub fn stack_addr(&mut self, offset: u32) -> VReg {
        let dst = self.vreg();
        self.push(Inst::StackAddr { dst, offset });
        dst
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => write!(f, "v{}", r.0),
            Operand::Imm(i) => write!(f, "{i}"),
        }
    }
}

impl fmt::Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inst::Mov { dst, src } => write!(f, "  v{} = {src}", dst.0),
            Inst::Alu { op, dst, a, b } => write!(f, "  v{} = {a} {op:?} {b}", dst.0),
            Inst::Neg { dst, a } => write!(f, "  v{} = -v{}", dst.0, a.0),
            Inst::ToBe { dst, a, bits } => write!(f, "  v{} = be{bits}(v{})", dst.0, a.0),
            Inst::Load {
                dst,
                base,
                off,
                size,
            } => write!(f, "  v{} = *({size:?})(v{} + {off})", dst.0, base.0),
            Inst::Store {
                base,
                off,
                src,
                size,
            } => write!(f, "  *({size:?})(v{} + {off}) = {src}", base.0),
            Inst::AtomicAdd {
                dst: Some(d),
                base,
                off,
                val,
            } => write!(
                f,
                "  v{} = atomic_fetch_add((DW)(v{} + {off}), {val})",
                d.0, base.0
            ),
            Inst::AtomicAdd {
                dst: None,
                base,
                off,
                val,
            } => write!(f, "  atomic_add((DW)(v{} + {off}), {val})", base.0),
            Inst::AtomicXchg {
                dst,
                base,
                off,
                val,
            } => write!(f, "  v{} = xchg((DW)(v{} + {off}), {val})", dst.0, base.0),
            Inst::StackAddr { dst, offset } => write!(f, "  v{} = fp - {offset}", dst.0),
            Inst::MapPtr { dst, map } => write!(f, "  v{} = map#{}", dst.0, map.0),
            Inst::Call { helper, args, dst } => {
                let a: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                match dst {
                    Some(d) => write!(f, "  v{} = call {helper}({})", d.0, a.join(", ")),
                    None => write!(f, "  call {helper}({})", a.join(", ")),
                }
            }
            Inst::Branch { cond, a, b, target } => {
                write!(f, "  if v{} {cond:?} {b} goto L{}", a.0, target.0)
            }
            Inst::Jump(l) => write!(f, "  goto L{}", l.0),
            Inst::Label(l) => write!(f, "L{}:", l.0),
            Inst::Ret(o) => write!(f, "  return {o}"),
            Inst::Line(l) => write!(f, "  ; line {l}"),
            Inst::MemZero { dst, len } => write!(f, "  memzero(v{}, {len})", dst.0),
            Inst::AtomicMax { base, off, val } => {
                write!(f, "  atomic_umax((DW)(v{} + {off}), v{})", base.0, val.0)
            }
            Inst::MemCopy { dst, src, len } => write!(f, "  memcpy(v{}, v{}, {len})", dst.0, src.0),
            Inst::StrCmp { dst, a, b, max } => {
                write!(f, "  v{} = strcmp(v{}, v{}, {max})", dst.0, a.0, b.0)
            }
            Inst::StrLen { dst, s, max, tmp } => {
                write!(f, "  v{} = strlen(v{}, {max}, tmp=v{})", dst.0, s.0, tmp.0)
            }
            Inst::StrChr {
                dst,
                s,
                c,
                max,
                reverse,
                tmp,
            } => {
                write!(
                    f,
                    "  v{} = strchr(v{}, {c}, {max}, rev={reverse}, tmp=v{})",
                    dst.0, s.0, tmp.0
                )
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
                write!(
                    f,
                    "  v{} = strstr(v{}, v{}, {start}, {max}, rev={reverse}, tmp=v{}",
                    dst.0, hay.0, needle.0, tmp.0
                )?;
                match literal {
                    Some(l) => write!(f, ", literal={:?})", String::from_utf8_lossy(l)),
                    None => write!(f, ")"),
                }
            }
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fn {}:", self.name)?;
        for i in &self.insts {
            writeln!(f, "{i}")?;
        }
        Ok(())
    }
}
