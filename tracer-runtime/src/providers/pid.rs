//! The pid provider: `pidNNN:MODULE:FUNC:entry|return` on uprobes, and bpftrace's
//! `uprobe:/path:func` / `uretprobe:/path:func`.
//!
//! MODULE is `a.out` for the executable or a library's file name (`libc.so.6`), found in the
//! process's `/proc/PID/maps`; FUNC globs over the ELF's `.symtab`, or over `.dynsym` and the
//! detached debug file's symbols (by build ID) when it is stripped, or a Go binary's pclntab.
//!
//! `return` is a uretprobe, except in Go binaries (or with `-x pidreturn=ret`): a uretprobe
//! replaces the return address on the stack, and Go's stack walker, finding a PC it does not
//! know, aborts the program. There `return` is a uprobe on each return instruction and tail
//! jump of the function (see insn_bounds.rs), as DTrace's pid provider does.

use super::golang::{self, Abi, GoInfo};
use super::insn_bounds::{self, Isa};
use super::{glob_match, Pattern};
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
use std::path::{Path, PathBuf};
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::probes::{ArgSource, ResolvedProbe};

/// More uprobes than this in one description is refused: each site holds two descriptors and
/// a kernel uprobe (probes running the same clauses share one program, see lower/shared.rs).
const MAX_PROBES: usize = 100_000;

/// A function symbol: name and file offset of its first instruction.
struct Function {
    name: String,
    offset: u64,
    /// Bytes of code (0 when the symbol table does not say).
    size: u64,
    /// Where its arguments are.
    abi: Abi,
}

/// An ELF file's functions, and what reading their code needs.
struct Module {
    funcs: Vec<Function>,
    data: Vec<u8>,
    isa: Option<Isa>,
    go: Option<GoInfo>,
}

impl Module {
    /// The instructions of `f`, decoded.
    fn insns(&self, f: &Function) -> Result<insn_bounds::Insns, String> {
        let isa = self.isa.ok_or("tracer does not decode this architecture")?;
        let code = usize::try_from(f.offset)
            .ok()
            .and_then(|o| self.data.get(o..o.checked_add(f.size as usize)?))
            .ok_or("its code is outside the file")?;
        insn_bounds::decode(isa, code)
    }
}

/// How `return` probes attach (the pidreturn option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnMethod {
    /// Return instructions in Go binaries, uretprobes elsewhere.
    #[default]
    Auto,
    /// A uprobe on every return instruction and tail jump.
    Ret,
    Uretprobe,
}

impl ReturnMethod {
    pub fn parse(s: &str) -> ReturnMethod {
        match s {
            "ret" => ReturnMethod::Ret,
            "uretprobe" => ReturnMethod::Uretprobe,
            _ => ReturnMethod::Auto,
        }
    }

    fn on_ret(self, m: &Module) -> bool {
        match self {
            ReturnMethod::Auto => m.go.is_some(),
            ReturnMethod::Ret => true,
            ReturnMethod::Uretprobe => false,
        }
    }
}

/// The functions of an ELF file, with file offsets (through PT_LOAD).
fn functions(path: &Path) -> Result<Module, String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), plain(&e)))?;
    let file = object::File::parse(&*data)
        .map_err(|e| format!("{} is not an ELF file: {e}", path.display()))?;
    let go = golang::detect(&file);
    let abi = |name: &str| go.as_ref().map_or(Abi::C, |g| golang::abi_of(g, name));
    let segments: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let to_offset = |addr: u64| {
        segments
            .iter()
            .find(|(va, size, _)| *va <= addr && addr < va + size)
            .map(|(va, _, off)| addr - va + off)
    };
    let text_symbols = |f: &object::File| -> Vec<Function> {
        f.symbols()
            .chain(f.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some(Function {
                    name: name.to_string(),
                    offset: to_offset(s.address())?,
                    size: s.size(),
                    abi: abi(name),
                })
            })
            .collect()
    };
    let mut syms = text_symbols(&file);
    // A stripped file keeps only its exported functions in .dynsym; the detached debug file
    // (found by build ID, as gdb does) has the rest, at the same addresses.
    if file.section_by_name(".symtab").is_none() {
        if let Some(debug) = file
            .build_id()
            .ok()
            .flatten()
            .and_then(|id| debug_file(path, id))
        {
            if let Ok(data) = std::fs::read(&debug) {
                if let Ok(dfile) = object::File::parse(&*data) {
                    syms.extend(text_symbols(&dfile));
                }
            }
        }
    }
    // `-ldflags=-s -w` leaves a Go binary no symbols (but cgo's exported ones in .dynsym);
    // the runtime's own table of functions, for tracebacks, stays.
    if file.section_by_name(".symtab").is_none() && go.is_some() {
        match golang::pclntab_functions(&file) {
            Ok(pc) => syms.extend(pc.into_iter().filter_map(|f| {
                Some(Function {
                    offset: to_offset(f.addr)?,
                    size: f.size,
                    abi: abi(&f.name),
                    name: f.name,
                })
            })),
            Err(e) if syms.is_empty() => {
                return Err(format!(
                    "{} is a stripped Go binary, and {e}",
                    path.display()
                ))
            }
            Err(_) => {}
        }
    }
    syms.sort_by(|a, b| a.name.cmp(&b.name));
    syms.dedup_by(|a, b| a.name == b.name);
    if syms.is_empty() {
        return Err(format!(
            "{} has no function symbols (stripped, and no .dynsym)",
            path.display()
        ));
    }
    let isa = Isa::of(file.architecture());
    drop(file);
    Ok(Module {
        funcs: syms,
        data,
        isa,
        go,
    })
}

/// `/usr/lib/debug/.build-id/xx/yyyy.debug` for build ID `id`, looked up inside the root
/// `path` is seen through (`/proc/PID/root/...`) and then on the host.
fn debug_file(path: &Path, id: &[u8]) -> Option<PathBuf> {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() < 3 {
        return None;
    }
    let rel = format!("usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    let root = path
        .to_str()
        .and_then(|p| p.strip_prefix("/proc/"))
        .and_then(|rest| rest.split_once("/root/"))
        .map(|(pid, _)| PathBuf::from(format!("/proc/{pid}/root")));
    root.into_iter()
        .chain(std::iter::once(PathBuf::from("/")))
        .map(|r| r.join(&rel))
        .find(|p| p.is_file())
}

fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// The executable and the libraries process `pid` maps, as (DTrace module name, path seen
/// through the process's root, so container binaries are the ones probed).
fn modules(pid: u32) -> Result<Vec<(String, PathBuf)>, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|_| format!("failed to grab pid {pid}: No such process"))?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].contains('x') || !fields[5].starts_with('/') {
            continue;
        }
        let path = PathBuf::from(fields[5..].join(" "));
        let name = if Some(&path) == exe.as_ref() {
            "a.out".to_string()
        } else {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((
                name,
                Path::new(&format!("/proc/{pid}/root"))
                    .join(path.strip_prefix("/").unwrap_or(&path)),
            ));
        }
    }
    Ok(out)
}

/// `/proc/PID/root/<libdir>/<name>` for the first library directory that has it.
fn library_path(pid: u32, name: &str) -> Option<PathBuf> {
    const DIRS: [&str; 8] = [
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
        "lib/aarch64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
        "lib64",
        "usr/lib64",
        "lib",
        "usr/lib",
    ];
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    DIRS.iter()
        .map(|d| root.join(d).join(name))
        .find(|p| p.is_file())
}

/// Where the arguments of `f` are at its entry (or at an offset in it).
fn entry_args(f: &Function) -> ArgSource {
    match f.abi {
        Abi::C => ArgSource::PtRegs { ret: false },
        abi => ArgSource::Regs {
            args: golang::entry_args(abi),
            ret_offset: None,
        },
    }
}

fn probe(
    provider: &str,
    module: &str,
    f: &Function,
    ret: bool,
    path: &Path,
    pid: Option<u32>,
) -> ResolvedProbe {
    ResolvedProbe {
        desc: ProbeDesc {
            id: 0,
            provider: provider.into(),
            module: module.into(),
            function: f.name.clone(),
            name: if ret { "return".into() } else { "entry".into() },
        },
        attach: Attach::Uprobe {
            path: path.to_string_lossy().into_owned(),
            offset: f.offset,
            ret,
            pid,
            ref_ctr_offset: None,
        },
        args: if ret {
            ArgSource::PtRegs { ret }
        } else {
            entry_args(f)
        },
        sites: Vec::new(),
    }
}

/// A Go function's entry probe moves past its stack-bound check (see
/// `Insns::after_stack_check`): when the stack grows, the function runs its first
/// instruction again, and a probe there would count the call twice.
fn go_entry(mut p: ResolvedProbe, f: &Function, m: &Module) -> ResolvedProbe {
    let entry = matches!(&p.attach, Attach::Uprobe { ret: false, .. }) && p.desc.name == "entry";
    if m.go.is_none() || !entry || f.abi == Abi::C {
        return p;
    }
    if let Some(skip) = m.insns(f).ok().and_then(|i| i.after_stack_check()) {
        if let Attach::Uprobe { offset, .. } = &mut p.attach {
            *offset += skip;
        }
    }
    p
}

/// Functions whose return probes were left out, for one notice.
#[derive(Default)]
struct Skipped {
    count: usize,
    first: Option<(String, String)>,
}

impl Skipped {
    fn add(&mut self, name: &str, why: String) {
        self.count += 1;
        self.first.get_or_insert_with(|| (name.to_string(), why));
    }

    fn report(&self, what: &str, notices: &mut Vec<String>) {
        if let Some((name, why)) = &self.first {
            notices.push(format!(
                "{} function{} that {what} matches {} no return probes: where {} cannot be told for certain (first: {name}: {why})",
                self.count,
                if self.count == 1 { "" } else { "s" },
                if self.count == 1 { "has" } else { "have" },
                if self.count == 1 { "it returns" } else { "they return" },
            ));
        }
    }
}

/// `FUNC:return` as uprobes on each return instruction and tail jump of `f`, all the same
/// probe; arg0 is the site's offset. Nothing is probed when the code cannot be decoded, or
/// has an indirect jump, which may be a tail call (or a jump table's, which we cannot tell).
fn return_sites(
    provider: &str,
    module: &str,
    f: &Function,
    m: &Module,
    path: &Path,
    pid: Option<u32>,
    skipped: &mut Skipped,
) -> Vec<ResolvedProbe> {
    let insns = match m.insns(f) {
        Ok(i) => i,
        Err(e) => {
            skipped.add(&f.name, format!("cannot decode it: {e}"));
            return Vec::new();
        }
    };
    if let Some(at) = insns.indirect.first() {
        skipped.add(&f.name, format!("an indirect jump at 0x{at:x}"));
        return Vec::new();
    }
    // A uprobe fires whether or not the branch is taken: a conditional tail call would count
    // a return each time it is passed.
    if let Some(at) = insns.conditional_exits.first() {
        skipped.add(&f.name, format!("a conditional jump out of it at 0x{at:x}"));
        return Vec::new();
    }
    insns
        .returns
        .iter()
        .map(|&off| {
            let mut p = probe(provider, module, f, false, path, pid);
            p.desc.name = "return".into();
            if let Attach::Uprobe { offset, .. } = &mut p.attach {
                *offset += off;
            }
            p.args = ArgSource::Regs {
                args: golang::return_args(f.abi),
                ret_offset: Some(off as u32),
            };
            p
        })
        .collect()
}

/// `pidNNN:MOD:FUNC:OFFSET`: a uprobe `off` bytes into `f`. The offset must start an
/// instruction: a uprobe in the middle of one corrupts the program, so the code is decoded.
fn offset_probe(
    provider: &str,
    module: &str,
    f: &Function,
    m: &Module,
    off: u64,
    path: &Path,
    pid: u32,
) -> Result<ResolvedProbe, String> {
    let name = format!("{provider}:{module}:{}:{off:x}", f.name);
    if f.size != 0 && off >= f.size {
        return Err(format!(
            "{name}: offset 0x{off:x} is past the end of {} ({} bytes)",
            f.name, f.size
        ));
    }
    // The entry is always an instruction; anywhere else needs the code decoded.
    if off != 0 {
        let insns = m
            .insns(f)
            .map_err(|e| format!("{name}: cannot find the instructions of {}: {e}", f.name))?;
        if !insns.is_boundary(off) {
            let hex = |b: Option<u64>| b.map_or("none".to_string(), |b| format!("0x{b:x}"));
            let (before, after) = insns.around(off);
            return Err(format!(
                "{name}: offset 0x{off:x} is inside an instruction; the nearest boundaries are {} and {}",
                hex(before),
                hex(after)
            ));
        }
    }
    let mut p = probe(provider, module, f, false, path, Some(pid));
    p.desc.name = format!("{off:x}");
    if let Attach::Uprobe { offset, .. } = &mut p.attach {
        *offset += off;
    }
    Ok(p)
}

/// `pidNNN:...` descriptions, with `return` attached the pidreturn option's way.
pub fn resolve_with(
    p: &Pattern,
    method: ReturnMethod,
    notices: &mut Vec<String>,
) -> Result<Vec<ResolvedProbe>, String> {
    let Some(pid) = p
        .provider
        .strip_prefix("pid")
        .and_then(|n| n.parse::<u32>().ok())
    else {
        if p.provider.starts_with("pid") && p.provider.contains('$') {
            return Err(
                "the pid provider needs a process: add -c 'command' or -p PID for $target".into(),
            );
        }
        return Ok(Vec::new());
    };
    let kinds: Vec<bool> = [false, true]
        .into_iter()
        .filter(|ret| {
            p.name.is_empty() || glob_match(&p.name, if *ret { "return" } else { "entry" })
        })
        .collect();
    // pidNNN:MOD:FUNC:OFFSET: the instruction `OFFSET` (hex) bytes into FUNC.
    let at = match u64::from_str_radix(&p.name, 16) {
        Ok(off) if kinds.is_empty() => Some(off),
        _ => None,
    };
    if kinds.is_empty() && at.is_none() {
        return Err(format!(
            "pid probe name \"{}\" is not supported (use entry, return or a hex instruction offset)",
            p.name
        ));
    }
    let mut out = Vec::new();
    let mut skipped = Skipped::default();
    let mut mods = modules(pid)?;
    // A `-c` process held at its exec has not mapped its libraries yet: find a named one in
    // the usual library directories (inside the process's root).
    if !p.module.is_empty()
        && !p.module.contains(['*', '?', '['])
        && !mods.iter().any(|(n, _)| *n == p.module)
    {
        if let Some(path) = library_path(pid, &p.module) {
            mods.push((p.module.clone(), path));
        }
    }
    let one_function = !p.function.is_empty() && !p.function.contains(['*', '?', '[']);
    for (module, path) in mods {
        if !(p.module.is_empty() || glob_match(&p.module, &module)) {
            continue;
        }
        let m = functions(&path)?;
        let on_ret = method.on_ret(&m);
        if m.go.is_some() && !on_ret && kinds.contains(&true) {
            notices.push(format!(
                "warning: {module} is a Go program, which a uretprobe can make abort (\"unexpected return pc\"); -x pidreturn=ret avoids them"
            ));
        }
        for f in m
            .funcs
            .iter()
            .filter(|f| p.function.is_empty() || glob_match(&p.function, &f.name))
        {
            if let Some(off) = at {
                // A glob skips the functions where the offset is no instruction.
                match offset_probe(&p.provider, &module, f, &m, off, &path, pid) {
                    Ok(probe) => out.push(probe),
                    Err(e) if one_function => return Err(e),
                    Err(_) => {}
                }
                continue;
            }
            for &ret in &kinds {
                if ret && on_ret {
                    out.extend(return_sites(
                        &p.provider,
                        &module,
                        f,
                        &m,
                        &path,
                        Some(pid),
                        &mut skipped,
                    ));
                } else {
                    out.push(go_entry(
                        probe(&p.provider, &module, f, ret, &path, Some(pid)),
                        f,
                        &m,
                    ));
                }
            }
        }
    }
    skipped.report(
        &format!("{}:{}:{}:{}", p.provider, p.module, p.function, p.name),
        notices,
    );
    if out.len() > MAX_PROBES {
        return Err(format!(
            "{} matches {} pid probes; at most {MAX_PROBES} are supported (narrow the function glob)",
            p.provider,
            out.len()
        ));
    }
    Ok(out)
}

/// bpftrace's `uprobe:/path:func` and `uretprobe:/path:func` (every process that runs it).
/// A uretprobe in a Go binary is made of return-instruction uprobes too (see the top).
pub fn resolve_bpftrace(
    kind: &str,
    path: &str,
    func: &str,
    method: ReturnMethod,
    notices: &mut Vec<String>,
) -> Result<Vec<ResolvedProbe>, String> {
    let ret = matches!(kind, "uretprobe" | "ur");
    let path = PathBuf::from(path);
    if !path.exists() {
        return Err(format!("{}: No such file or directory", path.display()));
    }
    let module = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let m = functions(&path)?;
    let provider = if ret { "uretprobe" } else { "uprobe" };
    let mut skipped = Skipped::default();
    let mut out = Vec::new();
    for f in m.funcs.iter().filter(|f| glob_match(func, &f.name)) {
        if ret && method.on_ret(&m) {
            out.extend(return_sites(
                provider,
                &module,
                f,
                &m,
                &path,
                None,
                &mut skipped,
            ));
        } else {
            out.push(go_entry(
                probe(provider, &module, f, ret, &path, None),
                f,
                &m,
            ));
        }
    }
    skipped.report(&format!("{kind}:{}:{func}", path.display()), notices);
    if out.len() > MAX_PROBES {
        return Err(format!(
            "{func} matches {} functions; at most {MAX_PROBES} uprobes are supported",
            out.len()
        ));
    }
    Ok(out)
}
