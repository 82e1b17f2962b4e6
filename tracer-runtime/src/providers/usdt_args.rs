//! USDT argument specs from `.note.stapsdt` (`-4@%edi 8@-8(%rbp)`, `8@x0 -4@[sp, 12]`) decoded
//! into where the generated program reads each argument: a `struct pt_regs` offset, a constant,
//! or user memory. Both architectures are decoded on any host, so both are unit-tested here.

use tracer_lang::probes::{UsdtArg, UsdtLoc};

/// Only the host's variant is built outside tests; the other is decoded in the unit tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    #[cfg(target_arch = "x86_64")]
    pub const HOST: Arch = Arch::X86_64;
    #[cfg(target_arch = "aarch64")]
    pub const HOST: Arch = Arch::Aarch64;

    /// The `struct pt_regs` offset of the instruction pointer.
    fn ip(self) -> i16 {
        match self {
            Arch::X86_64 => 16 * 8,
            Arch::Aarch64 => 32 * 8,
        }
    }
}

/// What a spec needs from its ELF file: the site's address (after the prelink adjustment) and
/// symbol addresses, for `sym(%rip)` operands.
pub struct Site<'a> {
    pub pc: u64,
    pub symbol: &'a dyn Fn(&str) -> Option<u64>,
}

/// Every argument of a note's spec string. An operand tracer cannot decode becomes
/// `UsdtLoc::Unsupported`, an error only if the script reads that argument.
pub fn parse_args(spec: &str, arch: Arch, site: &Site) -> Vec<UsdtArg> {
    split_args(spec)
        .into_iter()
        .map(|a| parse_arg(a, arch, site))
        .collect()
}

/// Split on spaces outside brackets: aarch64 memory operands hold one (`[sp, 12]`).
fn split_args(spec: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, None);
    for (i, c) in spec.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth <= 0 {
            if let Some(s) = start.take() {
                out.push(&spec[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&spec[s..]);
    }
    out
}

fn parse_arg(text: &str, arch: Arch, site: &Site) -> UsdtArg {
    // `[-]N@operand`; the old format without a size is an unsigned long.
    let (size, signed, operand) = match text.split_once('@') {
        Some((n, op)) => match n.parse::<i32>() {
            Ok(n) if matches!(n.abs(), 1 | 2 | 4 | 8) => (n.unsigned_abs() as u8, n < 0, op),
            _ => {
                return UsdtArg {
                    size: 8,
                    signed: false,
                    loc: unsupported(text, "the size must be 1, 2, 4 or 8 bytes"),
                }
            }
        },
        None => (8, false, text),
    };
    let loc = match arch {
        Arch::X86_64 => x86_operand(operand, site),
        Arch::Aarch64 => arm_operand(operand, site),
    }
    .unwrap_or_else(|why| unsupported(text, &why));
    UsdtArg { size, signed, loc }
}

fn unsupported(text: &str, why: &str) -> UsdtLoc {
    UsdtLoc::Unsupported(format!(
        "its USDT argument spec \"{text}\" is not supported ({why})"
    ))
}

/// A decimal or 0x-hex integer with an optional sign.
fn number(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => u64::from_str_radix(h, 16).ok()? as i64,
        None => digits.parse::<u64>().ok()? as i64,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// x86-64 registers, including sub-registers (`%edi` is rdi), as pt_regs offsets.
fn x86_reg(name: &str) -> Result<i16, String> {
    const REGS: [(&[&str], i16); 17] = [
        (&["r15", "r15d", "r15w", "r15b", "r15l"], 0),
        (&["r14", "r14d", "r14w", "r14b", "r14l"], 8),
        (&["r13", "r13d", "r13w", "r13b", "r13l"], 16),
        (&["r12", "r12d", "r12w", "r12b", "r12l"], 24),
        (&["rbp", "ebp", "bp", "bpl"], 32),
        (&["rbx", "ebx", "bx", "bl"], 40),
        (&["r11", "r11d", "r11w", "r11b", "r11l"], 48),
        (&["r10", "r10d", "r10w", "r10b", "r10l"], 56),
        (&["r9", "r9d", "r9w", "r9b", "r9l"], 64),
        (&["r8", "r8d", "r8w", "r8b", "r8l"], 72),
        (&["rax", "eax", "ax", "al"], 80),
        (&["rcx", "ecx", "cx", "cl"], 88),
        (&["rdx", "edx", "dx", "dl"], 96),
        (&["rsi", "esi", "si", "sil"], 104),
        (&["rdi", "edi", "di", "dil"], 112),
        (&["rip", "eip"], 128),
        (&["rsp", "esp", "sp", "spl"], 152),
    ];
    let bare = name
        .strip_prefix('%')
        .ok_or_else(|| format!("expected a register, found \"{name}\""))?;
    REGS.iter()
        .find(|(names, _)| names.contains(&bare))
        .map(|(_, off)| *off)
        .ok_or_else(|| format!("unknown register %{bare}"))
}

fn x86_operand(op: &str, site: &Site) -> Result<UsdtLoc, String> {
    if let Some(imm) = op.strip_prefix('$') {
        return number(imm)
            .map(UsdtLoc::Const)
            .ok_or_else(|| "a symbolic immediate".to_string());
    }
    if op.starts_with('%') {
        if op.contains(':') {
            return Err("a segment-relative (thread-local) operand".into());
        }
        return Ok(UsdtLoc::Reg { off: x86_reg(op)? });
    }
    // disp(%base[,%index[,scale]]) with disp numeric, `sym`, `sym+N` or `sym-N`.
    let (disp, inner) = op
        .strip_suffix(')')
        .and_then(|o| o.split_once('('))
        .ok_or_else(|| "an absolute address".to_string())?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let base = match parts[0] {
        "" => None,
        b => Some(x86_reg(b)?),
    };
    let index = match parts.get(1) {
        None | Some(&"") => None,
        Some(x) => {
            let scale = match parts.get(2) {
                None => 1,
                Some(s) => match number(s) {
                    Some(n @ (1 | 2 | 4 | 8)) => n as u8,
                    _ => return Err(format!("scale {s}")),
                },
            };
            Some((x86_reg(x)?, scale))
        }
    };
    if parts.len() > 3 {
        return Err("too many address parts".into());
    }
    let rip = base == Some(Arch::X86_64.ip());
    let disp = match (disp, number(disp)) {
        ("", _) => 0,
        (_, Some(n)) if !rip => n,
        (_, Some(_)) => return Err("a numeric rip-relative offset".into()),
        (sym, None) => {
            if !rip {
                return Err("a symbol not relative to %rip".into());
            }
            // sym(%rip) is the symbol's address; the program knows only the probe's own ip
            // at run time (the load address varies), so the offset is from the probe site.
            let (name, add) = split_symbol(sym)?;
            let addr = (site.symbol)(name)
                .ok_or_else(|| format!("symbol {name} is not in the file's symbol tables"))?;
            return Ok(UsdtLoc::Mem {
                base,
                index,
                disp: addr.wrapping_add(add as u64).wrapping_sub(site.pc) as i64,
            });
        }
    };
    Ok(UsdtLoc::Mem { base, index, disp })
}

/// `sym`, `sym+8`, `sym-8` into the name and the addend.
fn split_symbol(s: &str) -> Result<(&str, i64), String> {
    match s.rfind(['+', '-']) {
        Some(i) if i > 0 => {
            let n = number(&s[i..]).ok_or_else(|| format!("symbol offset in {s}"))?;
            Ok((&s[..i], n))
        }
        _ => Ok((s, 0)),
    }
}

/// aarch64 registers (`x0`..`x30`, `w0`..`w30`, `sp`) as pt_regs offsets; None for xzr/wzr.
fn arm_reg(name: &str) -> Result<Option<i16>, String> {
    match name {
        "sp" | "wsp" => return Ok(Some(31 * 8)),
        "xzr" | "wzr" => return Ok(None),
        "lr" => return Ok(Some(30 * 8)),
        "fp" => return Ok(Some(29 * 8)),
        _ => {}
    }
    match name
        .strip_prefix(['x', 'w'])
        .and_then(|n| n.parse::<i16>().ok())
    {
        Some(n @ 0..=30) => Ok(Some(n * 8)),
        _ => Err(format!("unknown register {name}")),
    }
}

fn arm_operand(op: &str, site: &Site) -> Result<UsdtLoc, String> {
    if let Some(inner) = op.strip_prefix('[').and_then(|o| o.strip_suffix(']')) {
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let base = arm_reg(parts[0])?;
        let disp = match parts.get(1).map(|d| d.strip_prefix('#').unwrap_or(d)) {
            None => 0,
            // A global: the base register holds its page (adrp), the offset is the low 12
            // bits of its address, which loading at a page-aligned bias does not change.
            Some(d) if d.starts_with(":lo12:") => {
                let (name, add) = split_symbol(&d[6..])?;
                let addr = (site.symbol)(name).ok_or_else(|| {
                    format!("symbol {name} is not in the file's symbol tables (an assembler-local label)")
                })?;
                (addr.wrapping_add(add as u64) & 0xfff) as i64
            }
            Some(d) => number(d)
                .ok_or_else(|| format!("offset {d} (register offsets are not supported)"))?,
        };
        if parts.len() > 2 {
            return Err("an extended or shifted address".into());
        }
        return Ok(UsdtLoc::Mem {
            base,
            index: None,
            disp,
        });
    }
    if let Some(n) = number(op.strip_prefix('#').unwrap_or(op)) {
        return Ok(UsdtLoc::Const(n));
    }
    Ok(match arm_reg(op)? {
        Some(off) => UsdtLoc::Reg { off },
        None => UsdtLoc::Const(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86(spec: &str) -> Vec<UsdtArg> {
        let sym = |n: &str| (n == "counter").then_some(0x4010u64);
        parse_args(
            spec,
            Arch::X86_64,
            &Site {
                pc: 0x1000,
                symbol: &sym,
            },
        )
    }

    fn arm(spec: &str) -> Vec<UsdtArg> {
        let sym = |n: &str| (n == "counter").then_some(0x11234u64);
        parse_args(
            spec,
            Arch::Aarch64,
            &Site {
                pc: 0,
                symbol: &sym,
            },
        )
    }

    fn arg(size: u8, signed: bool, loc: UsdtLoc) -> UsdtArg {
        UsdtArg { size, signed, loc }
    }

    fn mem(base: Option<i16>, index: Option<(i16, u8)>, disp: i64) -> UsdtLoc {
        UsdtLoc::Mem { base, index, disp }
    }

    #[test]
    fn x86_registers_with_size_and_sign() {
        assert_eq!(
            x86("-4@%edi 8@%rax 2@%r12w -1@%sil"),
            vec![
                arg(4, true, UsdtLoc::Reg { off: 112 }),
                arg(8, false, UsdtLoc::Reg { off: 80 }),
                arg(2, false, UsdtLoc::Reg { off: 24 }),
                arg(1, true, UsdtLoc::Reg { off: 104 }),
            ]
        );
        // python3.11's function__entry
        let a = x86("8@%rbp 8@%r12 -4@%eax");
        assert_eq!(a[0].loc, UsdtLoc::Reg { off: 32 });
        assert_eq!(a[2], arg(4, true, UsdtLoc::Reg { off: 80 }));
    }

    #[test]
    fn x86_memory_and_constants() {
        assert_eq!(x86("8@-8(%rbp)")[0], arg(8, false, mem(Some(32), None, -8)));
        assert_eq!(
            x86("-4@112(%rsp)")[0],
            arg(4, true, mem(Some(152), None, 112))
        );
        assert_eq!(x86("8@(%rax)")[0].loc, mem(Some(80), None, 0));
        assert_eq!(x86("4@$42")[0], arg(4, false, UsdtLoc::Const(42)));
        assert_eq!(x86("-4@$-3")[0].loc, UsdtLoc::Const(-3));
        assert_eq!(x86("8@$0x10")[0].loc, UsdtLoc::Const(16));
        assert_eq!(
            x86("8@(%rax,%rdx,8)")[0].loc,
            mem(Some(80), Some((96, 8)), 0)
        );
        assert_eq!(
            x86("-2@-16(%rbx,%rcx,2)")[0].loc,
            mem(Some(40), Some((88, 2)), -16)
        );
        assert_eq!(x86("4@(,%rsi,4)")[0].loc, mem(None, Some((104, 4)), 0));
    }

    #[test]
    fn x86_rip_relative_is_relative_to_the_probe() {
        // counter is at 0x4010, the probe at 0x1000: the program adds 0x3010 to its ip.
        assert_eq!(x86("8@counter(%rip)")[0].loc, mem(Some(128), None, 0x3010));
        assert_eq!(
            x86("4@counter+4(%rip)")[0].loc,
            mem(Some(128), None, 0x3014)
        );
        assert!(matches!(
            x86("8@missing(%rip)")[0].loc,
            UsdtLoc::Unsupported(ref m) if m.contains("symbol missing")
        ));
    }

    #[test]
    fn x86_unsupported_forms_say_why() {
        for spec in ["8@%fs:16", "8@%xmm0", "3@%eax", "8@$sym", "8@%ah"] {
            match &x86(spec)[0].loc {
                UsdtLoc::Unsupported(m) => assert!(m.contains(spec), "{m}"),
                other => panic!("{spec} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn aarch64_forms() {
        assert_eq!(
            arm("8@x0 -4@[sp, 12] 8@[x1] 4@w2 -8@#5 8@[x29, -8] 4@[x3, #16] 8@sp 8@xzr 8@-7"),
            vec![
                arg(8, false, UsdtLoc::Reg { off: 0 }),
                arg(4, true, mem(Some(248), None, 12)),
                arg(8, false, mem(Some(8), None, 0)),
                arg(4, false, UsdtLoc::Reg { off: 16 }),
                arg(8, true, UsdtLoc::Const(5)),
                arg(8, false, mem(Some(232), None, -8)),
                arg(4, false, mem(Some(24), None, 16)),
                arg(8, false, UsdtLoc::Reg { off: 248 }),
                arg(8, false, UsdtLoc::Const(0)),
                arg(8, false, UsdtLoc::Const(-7)),
            ]
        );
        // A global through its page: [x28, #:lo12:counter] with counter at 0x11234.
        assert_eq!(
            arm("-8@[x28, #:lo12:counter]")[0],
            arg(8, true, mem(Some(224), None, 0x234))
        );
        assert!(matches!(
            arm("-8@[x28, #:lo12:.LANCHOR1]")[0].loc,
            UsdtLoc::Unsupported(ref m) if m.contains(".LANCHOR1")
        ));
        assert!(matches!(arm("8@[x1, x2]")[0].loc, UsdtLoc::Unsupported(_)));
        assert!(matches!(arm("8@q0")[0].loc, UsdtLoc::Unsupported(_)));
    }

    #[test]
    fn empty_spec_has_no_args() {
        assert!(x86("").is_empty());
        assert_eq!(
            split_args("  8@x0   -4@[sp, 12] "),
            vec!["8@x0", "-4@[sp, 12]"]
        );
    }
}
