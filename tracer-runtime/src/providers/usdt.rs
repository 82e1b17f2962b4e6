//! USDT (stapsdt) probes: `PROVIDER$target:MODULE:FUNC:NAME`, `PROVIDERPID:::NAME`,
//! `PROVIDER*:::NAME`, and bpftrace's `usdt:/path:provider:name`.
//!
//! Sites come from `.note.stapsdt` in the executable and every library a process maps (or
//! needs, for a `-c` process held at its exec). Each site is one uprobe and one program, since
//! copies of a probe keep their arguments in different places. Names are shown as DTrace shows
//! them, `__` as `-`, and matched written either way.
//!
//! With a pid (`python$target`), the uprobes are for that process and the provider is shown as
//! `python12345`. Without one, the binaries of every running process are searched and the
//! uprobes are attached by path, so processes started later from the same files fire too.

use super::usdt_args::{parse_args, Arch, Site};
use super::{glob_match, Pattern};
use object::read::elf::ElfFile64;
use object::read::ReadCache;
use object::{Endianness, Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::probes::{ArgSource, ResolvedProbe};

type Elf<'a> = ElfFile64<'a, Endianness, &'a ReadCache<File>>;

/// Providers of tracer's own: a description naming one never searches processes for notes.
const BUILTIN: [&str; 14] = [
    "dtrace",
    "profile",
    "syscall",
    "tracepoint",
    "fbt",
    "proc",
    "sched",
    "io",
    "kprobe",
    "kretprobe",
    "fentry",
    "fexit",
    "uprobe",
    "uretprobe",
];

/// One probe site of a file.
#[derive(Debug, Clone)]
pub struct Note {
    pub provider: String,
    /// As in the note (`function__entry`).
    pub name: String,
    /// The function the site is in, from the symbol tables ("" when none covers it).
    pub function: String,
    /// File offset of the site.
    pub offset: u64,
    /// File offset of the semaphore, when the probe has one.
    pub semaphore: Option<u64>,
    pub args: ArgSource,
}

impl Note {
    /// DTrace's form of the name: `function__entry` is `function-entry`.
    pub fn dtrace_name(&self) -> String {
        self.name.replace("__", "-")
    }

    fn name_matches(&self, pat: &str) -> bool {
        pat.is_empty() || glob_match(pat, &self.dtrace_name()) || glob_match(pat, &self.name)
    }
}

/// True when `provider` may name a USDT provider (not one of tracer's own, not "any").
pub fn applies(provider: &str) -> bool {
    !provider.is_empty()
        && provider != "*"
        && !provider.starts_with("pid")
        && !BUILTIN.contains(&provider)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// The USDT sites of an ELF file (none when it has no `.note.stapsdt`), read once per file
/// version: a target's libraries are searched again at every dlopen() while descriptions
/// are pending, and libjvm.so's symbol table alone takes a while to read.
pub fn read_notes(path: &Path) -> Result<Vec<Note>, String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Version = (u64, u64, u64, i64);
    static CACHE: Mutex<Option<HashMap<Version, Vec<Note>>>> = Mutex::new(None);
    let version = std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime()));
    if let Some(v) = version {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(notes) = cache.as_ref().and_then(|c| c.get(&v)) {
            return Ok(notes.clone());
        }
    }
    let notes = read_notes_uncached(path)?;
    if let Some(v) = version {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get_or_insert_with(HashMap::new)
            .insert(v, notes.clone());
    }
    Ok(notes)
}

fn read_notes_uncached(path: &Path) -> Result<Vec<Note>, String> {
    let file =
        File::open(path).map_err(|e| format!("cannot read {}: {}", path.display(), plain(&e)))?;
    // Read on demand: searching every process's files must not read whole libraries.
    let cache = ReadCache::new(file);
    let elf: Elf = ElfFile64::parse(&cache)
        .map_err(|e| format!("{} is not a 64-bit ELF file: {e}", path.display()))?;
    let Some(section) = elf.section_by_name(".note.stapsdt") else {
        return Ok(Vec::new());
    };
    let data = section
        .data()
        .map_err(|e| format!("{}: bad .note.stapsdt: {e}", path.display()))?;
    let little = elf.is_little_endian();
    let raw = parse_notes(data, little);
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    // Prelink moved the file but not the notes: `.stapsdt.base` says by how much.
    let base = elf.section_by_name(".stapsdt.base").map(|s| s.address());
    let segments: Vec<(u64, u64, u64)> = elf
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let to_offset = |addr: u64| {
        segments
            .iter()
            .find(|(va, size, _)| *va <= addr && addr < va + size)
            .map(|(va, _, off)| addr - va + off)
    };
    let mut symbols: Vec<(u64, u64, String, bool)> = elf
        .symbols()
        .chain(elf.dynamic_symbols())
        .filter(|s| s.is_definition() && s.address() != 0)
        .filter_map(|s| {
            let text = s.kind() == SymbolKind::Text;
            Some((s.address(), s.size(), s.name().ok()?.to_string(), text))
        })
        .collect();
    symbols.sort();
    let function_at = |pc: u64| {
        symbols
            .iter()
            .filter(|(a, size, _, text)| *text && *a <= pc && (pc < a + size || *size == 0))
            .max_by_key(|(a, size, _, _)| (*a, *size != 0))
            .map(|(_, _, n, _)| n.clone())
            .unwrap_or_default()
    };
    let symbol = |name: &str| {
        symbols
            .iter()
            .find(|(_, _, n, _)| n == name)
            .map(|(a, ..)| *a)
    };
    let mut out = Vec::new();
    for n in raw {
        let pc = match base {
            Some(b) if n.base != 0 => n.pc.wrapping_add(b).wrapping_sub(n.base),
            _ => n.pc,
        };
        let Some(offset) = to_offset(pc) else {
            continue;
        };
        let args = parse_args(
            &n.args,
            Arch::HOST,
            &Site {
                pc,
                symbol: &symbol,
            },
        );
        out.push(Note {
            provider: n.provider,
            name: n.name,
            function: function_at(pc),
            offset,
            semaphore: (n.semaphore != 0).then(|| to_offset(n.semaphore)).flatten(),
            args: ArgSource::Usdt { args },
        });
    }
    Ok(out)
}

struct RawNote {
    pc: u64,
    base: u64,
    semaphore: u64,
    provider: String,
    name: String,
    args: String,
}

/// NT_STAPSDT (type 3, owner "stapsdt") notes: pc, base, semaphore (u64 each), then
/// `provider\0name\0args\0`.
fn parse_notes(data: &[u8], little: bool) -> Vec<RawNote> {
    let u32_at = |o: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(o..o + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let u64_at = |d: &[u8], o: usize| -> Option<u64> {
        let b: [u8; 8] = d.get(o..o + 8)?.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(namesz), Some(descsz), Some(ty)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8))
    {
        let name_at = at + 12;
        let desc_at = name_at + (namesz as usize).div_ceil(4) * 4;
        let next = desc_at + (descsz as usize).div_ceil(4) * 4;
        let (Some(owner), Some(desc)) = (
            data.get(name_at..name_at + namesz as usize),
            data.get(desc_at..desc_at + descsz as usize),
        ) else {
            break;
        };
        at = next;
        if ty != 3 || owner != b"stapsdt\0" {
            continue;
        }
        let (Some(pc), Some(base), Some(semaphore)) =
            (u64_at(desc, 0), u64_at(desc, 8), u64_at(desc, 16))
        else {
            continue;
        };
        let mut strings = desc[24.min(desc.len())..]
            .split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned());
        let (Some(provider), Some(name)) = (strings.next(), strings.next()) else {
            continue;
        };
        out.push(RawNote {
            pc,
            base,
            semaphore,
            provider,
            name,
            args: strings.next().unwrap_or_default(),
        });
    }
    out
}

/// A file to search: the path to attach with, and the name DTrace shows as the module.
struct Module {
    path: PathBuf,
    name: String,
}

fn identity(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// The executable and libraries of `pid`, seen through its root (so container binaries are
/// the ones probed), plus the libraries its executable needs: a `-c` process held at its exec
/// has not mapped them yet, and their uprobes take effect when it does.
fn modules(pid: u32) -> Result<Vec<Module>, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|_| format!("failed to grab pid {pid}: No such process"))?;
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut add = |path: PathBuf, out: &mut Vec<Module>| {
        if identity(&path).is_some_and(|id| seen.insert(id)) {
            // The file's own name, as the process's maps will show it (libstdc++.so.6.0.30).
            let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(Module { path, name });
        }
    };
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].contains('x') || !fields[5].starts_with('/') {
            continue;
        }
        let p = fields[5..].join(" ");
        add(root.join(p.trim_start_matches('/')), &mut out);
    }
    let mut i = 0;
    while i < out.len() && i < 64 {
        for lib in needed(&out[i].path) {
            if let Some(p) = library_path(&root, &lib) {
                add(p, &mut out);
            }
        }
        i += 1;
    }
    Ok(out)
}

/// DT_NEEDED names of an ELF file.
fn needed(path: &Path) -> Vec<String> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let cache = ReadCache::new(file);
    let Ok(elf) = Elf::parse(&cache) else {
        return Vec::new();
    };
    let Ok(table) = elf
        .elf_section_table()
        .dynamic_table(elf.endian(), elf.data())
    else {
        return Vec::new();
    };
    table
        .iter()
        .filter(|d| d.tag == object::elf::DT_NEEDED)
        .filter_map(|d| table.string(d).ok())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn library_path(root: &Path, name: &str) -> Option<PathBuf> {
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
    DIRS.iter()
        .map(|d| root.join(d).join(name))
        .find(|p| p.is_file())
}

/// The same file by its own path when tracer sees it there (it outlives the process).
fn stable_path(m: &Module) -> PathBuf {
    let Ok(rel) = m.path.strip_prefix("/proc") else {
        return m.path.clone();
    };
    // proc/PID/root/usr/bin/x -> /usr/bin/x
    let own = Path::new("/").join(rel.components().skip(2).collect::<PathBuf>());
    if identity(&own).is_some() && identity(&own) == identity(&m.path) {
        own
    } else {
        m.path.clone()
    }
}

fn probe(provider: String, module: &str, n: &Note, path: &Path, pid: Option<u32>) -> ResolvedProbe {
    ResolvedProbe {
        desc: ProbeDesc {
            id: 0,
            provider,
            module: module.into(),
            function: n.function.clone(),
            name: n.dtrace_name(),
        },
        attach: Attach::Uprobe {
            path: path.to_string_lossy().into_owned(),
            offset: n.offset,
            ret: false,
            pid,
            ref_ctr_offset: n.semaphore,
        },
        args: n.args.clone(),
        sites: Vec::new(),
    }
}

/// `python12345` is provider `python` of pid 12345 (when that process exists).
fn split_pid(provider: &str) -> Option<(&str, u32)> {
    let head = provider.trim_end_matches(|c: char| c.is_ascii_digit());
    if head.is_empty() || head.len() == provider.len() || is_glob(head) {
        return None;
    }
    let pid: u32 = provider[head.len()..].parse().ok()?;
    Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some((head, pid))
}

/// What matched, and what the provider offers when no name did (for the error).
struct Found {
    probes: Vec<ResolvedProbe>,
    provider_names: Vec<String>,
}

fn search(
    p: &Pattern,
    provider: &str,
    shown: &dyn Fn(&str) -> String,
    modules: &[Module],
    pid: Option<u32>,
    strict: bool,
) -> Result<Found, String> {
    let mut found = Found {
        probes: Vec::new(),
        provider_names: Vec::new(),
    };
    for m in modules {
        if !(p.module.is_empty() || glob_match(&p.module, &m.name)) {
            continue;
        }
        let notes = match read_notes(&m.path) {
            Ok(n) => n,
            Err(e) if strict => return Err(e),
            Err(_) => continue,
        };
        let path = if pid.is_some() {
            m.path.clone()
        } else {
            stable_path(m)
        };
        for n in notes.iter().filter(|n| glob_match(provider, &n.provider)) {
            if !(p.function.is_empty() || glob_match(&p.function, &n.function)) {
                continue;
            }
            if !n.name_matches(&p.name) {
                found.provider_names.push(n.dtrace_name());
                continue;
            }
            found
                .probes
                .push(probe(shown(&n.provider), &m.name, n, &path, pid));
        }
    }
    Ok(found)
}

/// Probes for a DTrace-form description whose provider `applies`. `explain` turns "nothing
/// matched" into an error saying what exists or how to name a process.
pub fn resolve(
    p: &Pattern,
    target: Option<u32>,
    explain: bool,
) -> Result<Vec<ResolvedProbe>, String> {
    if p.provider.contains('$') {
        return Err(format!(
            "USDT provider {} needs a process: add -c 'command' or -p PID for $target, or name the binary: usdt:/path/to/binary:PROVIDER:NAME",
            p.provider
        ));
    }
    let desc = format!("{}:{}:{}:{}", p.provider, p.module, p.function, p.name);
    let found = if let Some((provider, pid)) = split_pid(&p.provider) {
        let shown = |prov: &str| format!("{prov}{pid}");
        search(p, provider, &shown, &modules(pid)?, Some(pid), false)?
    } else {
        // Every running process's files, each searched once.
        let mut mods = Vec::new();
        let mut seen = HashSet::new();
        let pids = std::fs::read_dir("/proc")
            .map_err(|e| format!("cannot read /proc: {}", plain(&e)))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
        for pid in pids.chain(target) {
            for m in modules(pid).unwrap_or_default() {
                if identity(&m.path).is_some_and(|id| seen.insert(id)) {
                    mods.push(m);
                }
            }
        }
        search(p, &p.provider, &|prov| prov.to_string(), &mods, None, false)?
    };
    if found.probes.is_empty() && explain {
        let with_pid = split_pid(&p.provider).is_some();
        let mut e = not_found(&desc, found.provider_names, with_pid);
        if with_pid && !e.contains(';') {
            e.push_str(
                " (yet: with -Z it is enabled when the process loads a library that has it)",
            );
        }
        return Err(e);
    }
    Ok(found.probes)
}

fn not_found(desc: &str, mut names: Vec<String>, with_pid: bool) -> String {
    names.sort();
    names.dedup();
    if !names.is_empty() {
        return format!(
            "probe description {desc} does not match any probes; its USDT probes are: {}",
            names.join(", ")
        );
    }
    if with_pid {
        format!("probe description {desc} does not match any probes")
    } else {
        format!(
            "probe description {desc} does not match any probes (USDT providers are found in running processes: add -c 'command' or -p PID and write PROVIDER$target, or name the binary: usdt:/path/to/binary:PROVIDER:NAME)"
        )
    }
}

/// bpftrace's `usdt:/path:provider:name` (Pattern: provider "usdt", module = path, function =
/// provider). By path, every process that runs the file fires (the `-p` process only, with -p).
pub fn resolve_path(p: &Pattern, target: Option<u32>) -> Result<Vec<ResolvedProbe>, String> {
    if p.module.is_empty() {
        return Err("usdt probes need a binary: usdt:/path/to/binary:provider:name".into());
    }
    let path = PathBuf::from(&p.module);
    let module = if path.is_file() {
        Module {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
        }
    } else if let Some(m) = target
        .and_then(|pid| modules(pid).ok())
        .and_then(|ms| ms.into_iter().find(|m| m.name == p.module))
    {
        m
    } else {
        return Err(format!("{}: No such file or directory", p.module));
    };
    let provider = if p.function.is_empty() {
        "*"
    } else {
        &p.function
    };
    let pat = Pattern {
        provider: provider.into(),
        module: String::new(),
        function: String::new(),
        name: p.name.clone(),
    };
    let found = search(
        &pat,
        provider,
        &|prov| prov.to_string(),
        &[module],
        target,
        true,
    )?;
    if found.probes.is_empty() {
        return Err(not_found(
            &format!("usdt:{}:{}:{}", p.module, p.function, p.name),
            found.provider_names,
            true,
        ));
    }
    Ok(found.probes)
}

/// Probes for `-l`: those a pattern names, or all of the target's.
pub fn list(pattern: Option<&Pattern>, target: Option<u32>) -> Result<Vec<ProbeDesc>, String> {
    let probes = match (pattern, target) {
        (Some(p), _) if p.provider == "usdt" => resolve_path(p, target)?,
        (Some(p), _) if applies(&p.provider) => resolve(p, target, false)?,
        (_, Some(pid)) => {
            let all = Pattern::default();
            let shown = |prov: &str| format!("{prov}{pid}");
            let found = search(&all, "*", &shown, &modules(pid)?, Some(pid), false)?;
            found
                .probes
                .into_iter()
                .filter(|r| pattern.is_none_or(|p| p.matches(&r.desc)))
                .collect()
        }
        _ => Vec::new(),
    };
    let mut seen = HashSet::new();
    Ok(probes
        .into_iter()
        .map(|r| r.desc)
        .filter(|d| seen.insert(d.full_name()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(provider: &str, name: &str, args: &str, pc: u64) -> Vec<u8> {
        let mut desc = Vec::new();
        for v in [pc, 0x100, 0] {
            desc.extend(v.to_le_bytes());
        }
        for s in [provider, name, args] {
            desc.extend(s.as_bytes());
            desc.push(0);
        }
        let mut out = Vec::new();
        out.extend(8u32.to_le_bytes());
        out.extend((desc.len() as u32).to_le_bytes());
        out.extend(3u32.to_le_bytes());
        out.extend(b"stapsdt\0");
        out.extend(&desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn notes_parse_back_to_back() {
        let mut data = note("python", "function__entry", "8@%rbp -4@%eax", 0x10);
        data.extend(note("libstdcxx", "throw", "", 0x20));
        let n = parse_notes(&data, true);
        assert_eq!(n.len(), 2);
        assert_eq!(
            (
                n[0].provider.as_str(),
                n[0].name.as_str(),
                n[0].args.as_str(),
                n[0].pc
            ),
            ("python", "function__entry", "8@%rbp -4@%eax", 0x10)
        );
        assert_eq!(
            (n[1].name.as_str(), n[1].args.as_str(), n[1].base),
            ("throw", "", 0x100)
        );
        // A truncated note ends the list instead of reading past the section.
        assert_eq!(parse_notes(&data[..data.len() - 30], true).len(), 1);
    }

    #[test]
    fn providers_of_tracer_itself_are_not_searched() {
        assert!(applies("python"));
        assert!(applies("python*"));
        assert!(!applies("syscall"));
        assert!(!applies("pid123"));
        assert!(!applies(""));
        assert!(!applies("*"));
    }
}
