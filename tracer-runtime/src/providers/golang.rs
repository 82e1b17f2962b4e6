//! Go binaries: telling one apart, its functions' calling conventions, and its function
//! names from `.gopclntab` when `-ldflags=-s -w` stripped the symbol table (a reader modelled
//! on Go's `debug/gosym`, for the Go 1.18+ table).

use object::{Object, ObjectSection, ObjectSymbol};
use tracer_lang::probes::{UsdtArg, UsdtLoc};

/// A Go binary: its version, when its build info says.
#[derive(Debug, Clone, Default)]
pub struct GoInfo {
    /// "go1.19.8", or "" when unknown.
    pub version: String,
}

impl GoInfo {
    /// Whether Go functions take their arguments in registers (ABIInternal: amd64 since Go
    /// 1.17, arm64 since 1.18). An unknown version is taken as a recent one.
    pub fn register_abi(&self, arm64: bool) -> bool {
        let minor = self
            .version
            .strip_prefix("go1.")
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse::<u32>().ok());
        minor.is_none_or(|m| m >= if arm64 { 18 } else { 17 })
    }
}

/// The Go facts of `file`, or None when it was not built by Go. Both markers survive
/// `-s -w`.
pub fn detect(file: &object::File) -> Option<GoInfo> {
    let buildinfo = file.section_by_name(".go.buildinfo");
    if buildinfo.is_none() && file.section_by_name(".note.go.buildid").is_none() {
        return None;
    }
    let version = buildinfo
        .and_then(|s| s.data().ok())
        .and_then(buildinfo_version)
        .unwrap_or_default();
    Some(GoInfo { version })
}

/// The Go version in a `.go.buildinfo` blob (src/debug/buildinfo/buildinfo.go): Go 1.18+
/// writes it inline (flags bit 2) as a varint-prefixed string at +32; older ones point to
/// `runtime.buildVersion`, which we do not follow.
fn buildinfo_version(b: &[u8]) -> Option<String> {
    if !b.starts_with(b"\xff Go buildinf:") || b.len() < 33 || b[15] & 2 == 0 {
        return None;
    }
    let (n, used) = uvarint(&b[32..])?;
    let start = 32 + used;
    let s = b.get(start..start.checked_add(usize::try_from(n).ok()?)?)?;
    Some(String::from_utf8_lossy(s).into_owned())
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// How a Go binary's function takes its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// The platform's C convention (cgo's C functions, and any non-Go binary).
    C,
    /// Go's ABIInternal: integer arguments and results in registers.
    GoRegs,
    /// Go's ABI0 (assembly, and all Go code before the register ABI): on the stack.
    GoStack,
}

/// The convention of function `name` of a Go binary. Go names are qualified by their
/// package (`main.f`, `net/http.(*Server).Serve`); assembly shows as `name.abi0` in `.symtab`.
/// Names from a stripped binary's pclntab lose the `.abi0`, so its assembly is taken as
/// register-ABI Go.
pub fn abi_of(go: &GoInfo, name: &str) -> Abi {
    let arm64 = cfg!(target_arch = "aarch64");
    if name.ends_with(".abi0") || (name.contains('.') && !go.register_abi(arm64)) {
        Abi::GoStack
    } else if name.contains('.') {
        Abi::GoRegs
    } else {
        Abi::C
    }
}

/// `struct pt_regs` offsets of Go's integer argument registers, in order.
#[cfg(target_arch = "x86_64")]
const GO_REGS: &[i16] = &[10, 5, 11, 14, 13, 9, 8, 7, 6]; // rax rbx rcx rdi rsi r8 r9 r10 r11
#[cfg(target_arch = "aarch64")]
const GO_REGS: &[i16] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
#[cfg(target_arch = "x86_64")]
const SP: i16 = 19;
#[cfg(target_arch = "aarch64")]
const SP: i16 = 31;
/// How many stack words of an ABI0 function are offered as arguments.
const STACK_ARGS: i64 = 10;

fn word(loc: UsdtLoc) -> UsdtArg {
    UsdtArg {
        size: 8,
        signed: false,
        loc,
    }
}

/// Where arg0, arg1, ... of a function of convention `abi` are at its entry.
pub fn entry_args(abi: Abi) -> Vec<UsdtArg> {
    match abi {
        Abi::C => Vec::new(),
        Abi::GoRegs => GO_REGS
            .iter()
            .map(|r| word(UsdtLoc::Reg { off: r * 8 }))
            .collect(),
        // 0(SP) is the return address (amd64) or the saved-LR slot (arm64).
        Abi::GoStack => (0..STACK_ARGS)
            .map(|i| {
                word(UsdtLoc::Mem {
                    base: Some(SP * 8),
                    index: None,
                    disp: 8 + 8 * i,
                })
            })
            .collect(),
    }
}

/// arg0, arg1, ... at a return instruction: arg0 (the offset, filled in by the lowering) and
/// then the results, which Go's register ABI returns in the argument registers, the C one
/// in rax / x0.
pub fn return_args(abi: Abi) -> Vec<UsdtArg> {
    let mut out = vec![word(UsdtLoc::Const(0))];
    match abi {
        Abi::GoRegs => out.extend(GO_REGS.iter().map(|r| word(UsdtLoc::Reg { off: r * 8 }))),
        // ABI0 results are stack words whose place depends on the argument size: unknown.
        Abi::GoStack => {}
        Abi::C => out.push(word(UsdtLoc::Reg {
            off: GO_REGS[0] * 8,
        })),
    }
    out
}

/// A function the pclntab names: name, address and size in bytes.
pub struct PcFunc {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

/// The functions of a Go 1.18+ binary's pclntab (src/debug/gosym/pclntab.go, go12 and
/// later layouts).
pub fn pclntab_functions(file: &object::File) -> Result<Vec<PcFunc>, String> {
    let (tab, tab_addr) = pclntab(file).ok_or("it has no .gopclntab")?;
    let magic = u32::from_le_bytes(
        tab.get(..4)
            .ok_or("its .gopclntab is empty")?
            .try_into()
            .unwrap(),
    );
    if !matches!(magic, 0xffff_fff0 | 0xffff_fff1) || tab.len() < 8 || tab[4] != 0 || tab[5] != 0 {
        return Err(format!(
            "its .gopclntab (magic 0x{magic:x}) is older than Go 1.18's, which tracer does not read"
        ));
    }
    let ptr = tab[7] as usize;
    if ptr != 4 && ptr != 8 {
        return Err("its .gopclntab has a bad pointer size".into());
    }
    let short = || "its .gopclntab is truncated".to_string();
    let word = |k: usize| -> Result<u64, String> {
        let at = 8 + k * ptr;
        let b = tab.get(at..at + ptr).ok_or_else(short)?;
        Ok(if ptr == 8 {
            u64::from_le_bytes(b.try_into().unwrap())
        } else {
            u32::from_le_bytes(b.try_into().unwrap()) as u64
        })
    };
    let text = text_start(file, word(2)?, tab_addr + 8 + 2 * ptr as u64)?;
    let tail = |k: usize| -> Result<&[u8], String> {
        let off = usize::try_from(word(k)?).map_err(|_| short())?;
        tab.get(off..).ok_or_else(short)
    };
    let funcnames = tail(3)?;
    let funcdata = tail(7)?;
    // nfunc comes from the file: a table that cannot hold that many entries is damaged.
    let nfunc = usize::try_from(word(0)?).map_err(|_| short())?;
    if nfunc >= funcdata.len() / 8 {
        return Err(short());
    }
    let u32_at = |b: &[u8], at: usize| -> Result<u32, String> {
        b.get(at..at + 4)
            .map(|x| u32::from_le_bytes(x.try_into().unwrap()))
            .ok_or_else(short)
    };
    let mut out = Vec::with_capacity(nfunc);
    for k in 0..nfunc {
        // functab: nfunc pairs (entry offset from text, _func offset), then the end offset.
        let entry = u32_at(funcdata, 8 * k)? as u64;
        let next = u32_at(funcdata, 8 * (k + 1))? as u64;
        let func = u32_at(funcdata, 8 * k + 4)? as usize;
        // _func: entryOff u32, nameOff i32, ...
        let name_off = u32_at(funcdata, func + 4)? as usize;
        let name = funcnames.get(name_off..).ok_or_else(short)?;
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        out.push(PcFunc {
            name: String::from_utf8_lossy(name).into_owned(),
            addr: text.checked_add(entry).ok_or_else(short)?,
            size: next.saturating_sub(entry),
        });
    }
    Ok(out)
}

/// Where the pclntab's entry offsets count from: `runtime.text`. With an external linker
/// (every cgo build) C start-up code comes first in `.text`, so `.text`'s address is not it:
/// the symbol when there is one, else the header's text start, which the linker relocated (in
/// a PIE through a RELATIVE relocation whose addend holds it). `field` is that word's
/// address. Only a binary Go's own linker wrote (no `.init` from crti.o) may fall back to
/// `.text`; otherwise nothing is named, rather than every probe placed at a wrong address.
fn text_start(file: &object::File, header: u64, field: u64) -> Result<u64, String> {
    let text = file
        .section_by_name(".text")
        .map(|s| (s.address(), s.size()))
        .ok_or("it has no .text section")?;
    let inside = |a: u64| a.wrapping_sub(text.0) < text.1;
    if let Some(sym) = file.symbols().find(|s| s.name() == Ok("runtime.text")) {
        return Ok(sym.address());
    }
    if header != 0 && inside(header) {
        return Ok(header);
    }
    let relocated = file
        .dynamic_relocations()
        .into_iter()
        .flatten()
        .find_map(|(at, r)| {
            let addend = u64::try_from(r.addend()).ok()?;
            (at == field && inside(addend)).then_some(addend)
        });
    if let Some(a) = relocated {
        return Ok(a);
    }
    if file.section_by_name(".init").is_none() {
        return Ok(text.0);
    }
    Err("where its Go code starts cannot be told (an external linker's binary whose .gopclntab text start is not set)".into())
}

/// The pclntab's bytes and address: its own section (`.data.rel.ro.gopclntab` in a PIE), or
/// the span between the `runtime.pclntab` and `runtime.epclntab` symbols.
fn pclntab<'a>(file: &object::File<'a>) -> Option<(&'a [u8], u64)> {
    for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some(s) = file.section_by_name(name) {
            if let Ok(d) = s.data() {
                return Some((d, s.address()));
            }
        }
    }
    let sym = |n: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(n))
            .map(|s| s.address())
    };
    let (start, end) = (sym("runtime.pclntab")?, sym("runtime.epclntab")?);
    let len = usize::try_from(end.checked_sub(start)?).ok()?;
    file.sections()
        .filter_map(|s| {
            let d = s.data().ok()?;
            let off = usize::try_from(start.checked_sub(s.address())?).ok()?;
            Some((d.get(off..off.checked_add(len)?)?, start))
        })
        .next()
}

/// A stripped Go binary's functions by file offset, for naming stack frames that blazesym
/// (which does not read .gopclntab) leaves in hex.
pub struct FrameTable {
    /// (file offset, size, name), sorted by offset.
    funcs: Vec<(u64, u64, String)>,
}

impl FrameTable {
    /// The function at file offset `at`, and the offset into it.
    pub fn lookup(&self, at: u64) -> Option<(&str, u64)> {
        let i = self.funcs.partition_point(|f| f.0 <= at);
        let (start, size, name) = &self.funcs[i.checked_sub(1)?];
        (at - start < *size).then(|| (name.as_str(), at - start))
    }
}

/// The frame table of the Go binary at `path`; None for any other file, or one with a
/// symbol table (blazesym reads that).
pub fn frame_table(path: &std::path::Path) -> Option<FrameTable> {
    // Section headers first, read lazily: most files asked about are big C or C++ binaries
    // (node's is 99 MB) that must not be read whole to learn they are not Go.
    {
        let cache = object::ReadCache::new(std::fs::File::open(path).ok()?);
        let headers = object::File::parse(&cache).ok()?;
        let go = [".go.buildinfo", ".note.go.buildid", ".gopclntab"]
            .iter()
            .any(|s| headers.section_by_name(s).is_some());
        if !go || headers.section_by_name(".symtab").is_some() {
            return None;
        }
    }
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    // Only what blazesym cannot name: Go binaries without a symbol table.
    if file.section_by_name(".symtab").is_some() {
        return None;
    }
    detect(&file)?;
    let segs: Vec<(u64, u64, u64)> = object::Object::segments(&file)
        .map(|s| {
            use object::ObjectSegment;
            (s.address(), s.size(), s.file_range().0)
        })
        .collect();
    let mut funcs: Vec<(u64, u64, String)> = pclntab_functions(&file)
        .ok()?
        .into_iter()
        .filter_map(|f| {
            let (va, _, off) = segs
                .iter()
                .find(|(va, size, _)| f.addr.wrapping_sub(*va) < *size)?;
            Some(((f.addr - va).checked_add(*off)?, f.size, f.name))
        })
        .collect();
    funcs.sort_by_key(|f| f.0);
    Some(FrameTable { funcs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_choose_the_abi() {
        let v = |s: &str| GoInfo { version: s.into() };
        assert!(v("go1.19.8").register_abi(false));
        assert!(v("go1.17").register_abi(false));
        assert!(!v("go1.17").register_abi(true));
        assert!(!v("go1.16.5").register_abi(false));
        assert!(v("").register_abi(true));
        assert_eq!(abi_of(&v("go1.19"), "main.add"), Abi::GoRegs);
        assert_eq!(abi_of(&v("go1.19"), "runtime.memmove.abi0"), Abi::GoStack);
        assert_eq!(abi_of(&v("go1.19"), "crosscall2"), Abi::C);
        assert_eq!(abi_of(&v("go1.16"), "main.add"), Abi::GoStack);
    }

    #[test]
    fn buildinfo_inline_version() {
        let mut b = b"\xff Go buildinf:".to_vec();
        b.push(8); // pointer size
        b.push(2); // flags: the strings are inline
        b.resize(32, 0);
        b.push(8);
        b.extend_from_slice(b"go1.19.8");
        assert_eq!(buildinfo_version(&b).as_deref(), Some("go1.19.8"));
    }
}
