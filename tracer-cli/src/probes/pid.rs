//! The pid provider: `pidNNN:MODULE:FUNC:entry|return` on uprobes, and bpftrace's
//! `uprobe:/path:func` / `uretprobe:/path:func`.
//!
//! MODULE is `a.out` for the executable or a library's file name (`libc.so.6`), found in the
//! process's `/proc/PID/maps`; FUNC globs over the ELF's `.symtab`, or over `.dynsym` and the
//! detached debug file's symbols (by build ID) when it is stripped.

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
}

/// The functions of an ELF file, with file offsets (through PT_LOAD).
fn functions(path: &Path) -> Result<Vec<Function>, String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), plain(&e)))?;
    let file = object::File::parse(&*data)
        .map_err(|e| format!("{} is not an ELF file: {e}", path.display()))?;
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
                Some(Function {
                    name: s.name().ok()?.to_string(),
                    offset: to_offset(s.address())?,
                    size: s.size(),
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
    syms.sort_by(|a, b| a.name.cmp(&b.name));
    syms.dedup_by(|a, b| a.name == b.name);
    if syms.is_empty() {
        return Err(format!(
            "{} has no function symbols (stripped, and no .dynsym)",
            path.display()
        ));
    }
    Ok(syms)
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
        args: ArgSource::PtRegs { ret },
        covers: 1,
    }
}

/// `pidNNN:MOD:FUNC:OFFSET`: a uprobe `off` bytes into `f`. The offset must start an
/// instruction (as `objdump -d` shows): a uprobe in the middle of one corrupts the program.
fn offset_probe(
    provider: &str,
    module: &str,
    f: &Function,
    off: u64,
    path: &Path,
    pid: u32,
) -> Result<ResolvedProbe, String> {
    if f.size != 0 && off >= f.size {
        return Err(format!(
            "{provider}:{module}:{}:{off:x}: offset 0x{off:x} is past the end of {} ({} bytes)",
            f.name, f.name, f.size
        ));
    }
    if cfg!(target_arch = "aarch64") && !off.is_multiple_of(4) {
        return Err(format!(
            "{provider}:{module}:{}:{off:x}: aarch64 instructions are 4-byte aligned",
            f.name
        ));
    }
    let mut p = probe(provider, module, f, false, path, Some(pid));
    p.desc.name = format!("{off:x}");
    if let Attach::Uprobe { offset, .. } = &mut p.attach {
        *offset += off;
    }
    Ok(p)
}

/// `pidNNN:...` descriptions.
pub fn resolve(p: &Pattern) -> Result<Vec<ResolvedProbe>, String> {
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
    for (module, path) in mods {
        if !(p.module.is_empty() || glob_match(&p.module, &module)) {
            continue;
        }
        let funcs = functions(&path)?;
        for f in funcs
            .iter()
            .filter(|f| p.function.is_empty() || glob_match(&p.function, &f.name))
        {
            if let Some(off) = at {
                out.push(offset_probe(&p.provider, &module, f, off, &path, pid)?);
                continue;
            }
            for ret in &kinds {
                out.push(probe(&p.provider, &module, f, *ret, &path, Some(pid)));
            }
        }
    }
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
pub fn resolve_bpftrace(kind: &str, path: &str, func: &str) -> Result<Vec<ResolvedProbe>, String> {
    let ret = matches!(kind, "uretprobe" | "ur");
    let path = PathBuf::from(path);
    if !path.exists() {
        return Err(format!("{}: No such file or directory", path.display()));
    }
    let module = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let funcs = functions(&path)?;
    let out: Vec<ResolvedProbe> = funcs
        .iter()
        .filter(|f| glob_match(func, &f.name))
        .map(|f| {
            probe(
                if ret { "uretprobe" } else { "uprobe" },
                &module,
                f,
                ret,
                &path,
                None,
            )
        })
        .collect();
    if out.len() > MAX_PROBES {
        return Err(format!(
            "{func} matches {} functions; at most {MAX_PROBES} uprobes are supported",
            out.len()
        ));
    }
    Ok(out)
}
