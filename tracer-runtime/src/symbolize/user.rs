//! User-space symbolization with caches that live for the whole run.
//!
//! blazesym's `Symbolizer` caches parsed files by path, but `Source::Process` re-reads
//! /proc/PID/maps on every call, and a fresh `Source::Elf` lookup per address of a 100 MB
//! binary (node) cost seconds per stack. So: mappings are ours (read once per batch while the
//! process lives, remembered after it exits), each file is opened once per run (keyed by
//! device and inode, so a container's files and the host's never mix) and symbolized with one
//! `Input::FileOffset` batch per file, and every answer is cached per (pid, address).
//! Anonymous executable mappings are looked up in the process's perf map (JIT code), and
//! `[vdso]` in our own vdso (the same kernel image).

use super::perfmap::{perf_map_path, PerfMap};
use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a line of /proc/PID/maps maps.
#[derive(Debug, Clone, PartialEq)]
pub enum Backing {
    /// A file: its path as the process sees it, and its device (`major:minor`) and inode.
    File {
        path: PathBuf,
        dev: (u32, u32),
        inode: u64,
    },
    /// An anonymous executable mapping: JIT code, named by the perf map.
    Jit,
    Vdso,
}

/// One useful line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub backing: Backing,
}

impl Mapping {
    /// A file mapping, an anonymous executable one or the vdso; None for anything else.
    pub fn parse(line: &str) -> Option<Mapping> {
        let mut f = line.split_whitespace();
        let (range, perms, offset, dev, inode) =
            (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let path = f.collect::<Vec<_>>().join(" ");
        let (a, b) = range.split_once('-')?;
        let (major, minor) = dev.split_once(':')?;
        let backing = if path.starts_with('/') {
            Backing::File {
                path: path.into(),
                dev: (
                    u32::from_str_radix(major, 16).ok()?,
                    u32::from_str_radix(minor, 16).ok()?,
                ),
                inode: inode.parse().ok()?,
            }
        } else if path == "[vdso]" {
            Backing::Vdso
        } else if perms.contains('x') && (path.is_empty() || path.starts_with("[anon")) {
            Backing::Jit
        } else {
            return None;
        };
        Some(Mapping {
            start: u64::from_str_radix(a, 16).ok()?,
            end: u64::from_str_radix(b, 16).ok()?,
            offset: u64::from_str_radix(offset, 16).ok()?,
            backing,
        })
    }
}

/// The useful mappings of a /proc/PID/maps text.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(Mapping::parse).collect()
}

/// ``module`func+0xoff`` (no `+0x0`), as DTrace prints symbols.
pub fn format_sym(module: &str, name: &str, offset: u64) -> String {
    let mut s = if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}`{name}")
    };
    if offset != 0 {
        s.push_str(&format!("+{offset:#x}"));
    }
    s
}

/// A file opened for symbolization: the path blazesym reads it through, and the open file
/// that keeps `/proc/self/fd/N` valid when that is the only way to it.
struct OpenFile {
    path: PathBuf,
    _fd: Option<std::fs::File>,
    /// A stripped Go binary's functions from .gopclntab, which blazesym does not read;
    /// loaded when blazesym first leaves one of its addresses unnamed.
    go: Option<Option<crate::providers::golang::FrameTable>>,
}

/// A sorted symbol table (the vdso's dynamic symbols).
#[derive(Debug, Default)]
struct SymTable {
    syms: Vec<(u64, u64, String)>,
}

impl SymTable {
    fn lookup(&self, vaddr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.0 <= vaddr).checked_sub(1)?;
        let (start, size, name) = &self.syms[i];
        (vaddr - start < (*size).max(1)).then(|| (name.as_str(), vaddr - start))
    }
}

/// The vdso image's functions, by offset into its mapping. Our own vdso is the one every
/// same-architecture process maps.
fn vdso_table(image: &[u8]) -> Option<SymTable> {
    use object::{Object, ObjectSegment, ObjectSymbol};
    let file = object::File::parse(image).ok()?;
    // Mapping offset 0 is file offset 0; the first PT_LOAD says where that is linked.
    let base = file
        .segments()
        .find(|s| s.file_range().0 == 0)
        .map_or(0, |s| s.address());
    let mut syms: Vec<(u64, u64, String)> = file
        .dynamic_symbols()
        .chain(file.symbols())
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() >= base)
        .filter_map(|s| Some((s.address() - base, s.size(), s.name().ok()?.to_string())))
        .collect();
    // Aliases share an address; the `__vdso_` name is the one perf and DTrace show.
    syms.sort_by_key(|s| (s.0, !s.2.starts_with("__vdso_"), s.2.clone()));
    syms.dedup_by_key(|s| s.0);
    Some(SymTable { syms })
}

/// Our own vdso, read from /proc/self/mem at its mapping.
fn own_vdso() -> Option<SymTable> {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let m = parse_maps(&maps)
        .into_iter()
        .find(|m| m.backing == Backing::Vdso)?;
    let mut image = vec![0u8; (m.end - m.start) as usize];
    std::fs::File::open("/proc/self/mem")
        .ok()?
        .read_exact_at(&mut image, m.start)
        .ok()?;
    vdso_table(&image)
}

/// Whether `path` is the file with this device and inode. Btrfs and overlayfs can show an
/// anonymous device (major 0) in /proc/PID/maps that stat() does not report: then only the
/// inode counts.
fn same_file(path: &Path, dev: (u32, u32), inode: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|md| {
        let d = md.dev();
        md.ino() == inode && ((libc::major(d), libc::minor(d)) == dev || dev.0 == 0)
    })
}

/// Symbolizes user addresses; keep one for the whole run.
pub struct UserSymbolizer {
    symbolizer: Symbolizer,
    /// File mappings of processes: read live, or remembered while they were alive.
    maps: HashMap<u32, Vec<Mapping>>,
    /// Files by (device, inode); None when no way to them was found.
    files: HashMap<((u32, u32), u64), Option<OpenFile>>,
    perf_maps: HashMap<u32, PerfMap>,
    vdso: Option<Option<SymTable>>,
    /// Answers by pid and address (hex for unknown addresses until the next batch).
    cache: HashMap<u32, HashMap<u64, String>>,
}

impl Default for UserSymbolizer {
    fn default() -> Self {
        UserSymbolizer::new()
    }
}

impl UserSymbolizer {
    pub fn new() -> UserSymbolizer {
        UserSymbolizer {
            // We print names, not source lines: skipping line tables saves time and memory
            // on big binaries.
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build(),
            maps: HashMap::new(),
            files: HashMap::new(),
            perf_maps: HashMap::new(),
            vdso: None,
            cache: HashMap::new(),
        }
    }

    /// Keep a /proc/PID/maps text of `pid` (an empty one changes nothing), and find its
    /// perf map while the process is there to say where it is.
    pub fn keep_maps(&mut self, pid: u32, text: &str) {
        let maps = parse_maps(text);
        if maps.is_empty() {
            return;
        }
        if maps.iter().any(|m| m.backing == Backing::Jit) {
            self.perf_map(pid).refresh();
        }
        // Other files at the same addresses (dlclose, or the pid reused): forget the answers.
        fn files(v: &[Mapping]) -> Vec<&Mapping> {
            v.iter()
                .filter(|m| matches!(m.backing, Backing::File { .. }))
                .collect()
        }
        if let Some(old) = self.maps.get(&pid) {
            let (before, now) = (files(old), files(&maps));
            if before.iter().any(|m| !now.contains(m)) {
                self.cache.remove(&pid);
            }
        }
        self.maps.insert(pid, maps);
    }

    fn perf_map(&mut self, pid: u32) -> &mut PerfMap {
        self.perf_maps.entry(pid).or_insert_with(|| {
            // The process's owner: /proc/PID belongs to its effective uid.
            let uid = std::fs::metadata(format!("/proc/{pid}"))
                .ok()
                .map(|m| m.uid());
            PerfMap::new(perf_map_path(pid)).owned_by(uid)
        })
    }

    /// Symbolize a batch: after this, `syms` answers these addresses from the cache.
    /// Addresses that were unknown before are tried again (a JIT may have named them since).
    pub fn prefetch(&mut self, pid: u32, addrs: &[u64]) {
        if let Some(c) = self.cache.get_mut(&pid) {
            c.retain(|_, s| !s.starts_with("0x"));
        }
        self.resolve(pid, addrs);
    }

    /// `addrs` of process `pid` as ``module`func+0xoff``, hex when unknown.
    pub fn syms(&mut self, pid: u32, addrs: &[u64]) -> Vec<String> {
        self.resolve(pid, addrs);
        let cache = self.cache.get(&pid);
        addrs
            .iter()
            .map(|a| match cache.and_then(|c| c.get(a)) {
                Some(s) => s.clone(),
                None => format!("{a:#x}"),
            })
            .collect()
    }

    /// Fill the cache for the addresses it lacks.
    fn resolve(&mut self, pid: u32, addrs: &[u64]) {
        let missing = |c: &HashMap<u32, HashMap<u64, String>>| {
            let mut v: Vec<u64> = addrs
                .iter()
                .copied()
                .filter(|a| !c.get(&pid).is_some_and(|c| c.contains_key(a)))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if pid == 0 || missing(&self.cache).is_empty() {
            return;
        }
        // A live process's mappings are read once per batch (a zombie's are empty, so its
        // remembered ones stay).
        let live = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok();
        if let Some(text) = &live {
            self.keep_maps(pid, text);
        }
        let missing = missing(&self.cache);
        let maps = self.maps.get(&pid).cloned().unwrap_or_default();
        let mut answers: Vec<(u64, String)> = Vec::with_capacity(missing.len());
        // Group by mapping; `missing` is sorted, so each mapping's addresses are adjacent.
        let mut by_file: Vec<(usize, Vec<u64>)> = Vec::new();
        let mut jit: Vec<u64> = Vec::new();
        for &addr in &missing {
            let Some(i) = maps.iter().position(|m| m.start <= addr && addr < m.end) else {
                // Runtimes unmap their code space before they exit (node does), so the
                // copy taken at the exit stop may not have it: the perf map still does.
                jit.push(addr);
                continue;
            };
            let m = &maps[i];
            match &m.backing {
                Backing::File { .. } => {
                    let off = addr - m.start + m.offset;
                    match by_file.last_mut() {
                        Some((j, offs)) if *j == i => offs.push(off),
                        _ => by_file.push((i, vec![off])),
                    }
                }
                Backing::Jit => jit.push(addr),
                Backing::Vdso => {
                    if let Some(s) = self.vdso_sym(addr - m.start) {
                        answers.push((addr, s));
                    }
                }
            }
        }
        for (i, offs) in by_file {
            let m = &maps[i];
            let Backing::File { path, .. } = &m.backing else {
                continue;
            };
            let module = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let names = self.file_syms(pid, live.is_some(), m, &offs);
            for (off, name) in offs.iter().zip(names) {
                if let Some((name, o)) = name {
                    answers.push((off - m.offset + m.start, format_sym(&module, &name, o)));
                }
            }
        }
        if !jit.is_empty() {
            let pm = self.perf_map(pid);
            // JITs append as they compile: look again when an address is not there yet.
            if jit.iter().any(|&a| pm.lookup(a).is_none()) {
                pm.refresh();
            }
            for a in jit {
                if let Some((name, off)) = pm.lookup(a) {
                    answers.push((a, format_sym("", name, off)));
                }
            }
        }
        let cached = self.cache.entry(pid).or_default();
        for a in missing {
            cached.insert(a, format!("{a:#x}"));
        }
        cached.extend(answers);
    }

    fn vdso_sym(&mut self, off: u64) -> Option<String> {
        let table = self.vdso.get_or_insert_with(own_vdso).as_ref()?;
        let (name, o) = table.lookup(off)?;
        Some(format_sym("[vdso]", name, o))
    }

    /// The function names (and offsets) at file offsets `offs` of a mapped file: one
    /// blazesym batch against the file, opened once per run.
    fn file_syms(
        &mut self,
        pid: u32,
        live: bool,
        m: &Mapping,
        offs: &[u64],
    ) -> Vec<Option<(String, u64)>> {
        let Backing::File { dev, inode, .. } = m.backing else {
            return vec![None; offs.len()];
        };
        let key = (dev, inode);
        if !self.files.contains_key(&key) || (self.files[&key].is_none() && live) {
            let f = open_file(pid, live, m);
            self.files.insert(key, f);
        }
        let Some(Some(file)) = self.files.get_mut(&key) else {
            return vec![None; offs.len()];
        };
        let mut elf = Elf::new(&file.path);
        // Debug symbols name what .symtab lacks (separate debug files, stripped binaries).
        elf.debug_syms = true;
        let src = Source::Elf(elf);
        let mut names: Vec<Option<(String, u64)>> =
            match self.symbolizer.symbolize(&src, Input::FileOffset(offs)) {
                Ok(syms) => syms
                    .into_iter()
                    .map(|s| match s {
                        Symbolized::Sym(sym) => Some((sym.name.into_owned(), sym.offset as u64)),
                        Symbolized::Unknown(_) => None,
                    })
                    .collect(),
                Err(_) => vec![None; offs.len()],
            };
        if names.iter().any(Option::is_none) {
            let path = &file.path;
            let go = file
                .go
                .get_or_insert_with(|| crate::providers::golang::frame_table(path));
            if let Some(table) = go {
                for (name, off) in names.iter_mut().zip(offs) {
                    if name.is_none() {
                        *name = table.lookup(*off).map(|(n, o)| (n.to_string(), o));
                    }
                }
            }
        }
        names
    }
}

/// A way to read the file a mapping maps, checked against its device and inode: the path
/// itself, the path inside the process's root (containers), or the mapping's
/// /proc/PID/map_files entry (deleted or replaced files; needs CAP_SYS_ADMIN). An exited
/// process's file is taken at its path if the inode still matches: another file there (an
/// upgrade, or the host's libc for a container's) would give wrong names.
fn open_file(pid: u32, live: bool, m: &Mapping) -> Option<OpenFile> {
    let Backing::File { path, dev, inode } = &m.backing else {
        return None;
    };
    let (path, dev, inode) = (path.as_path(), *dev, *inode);
    let plain = |p: PathBuf| OpenFile {
        path: p,
        _fd: None,
        go: None,
    };
    if same_file(path, dev, inode) {
        return Some(plain(path.to_path_buf()));
    }
    if live {
        let rooted = Path::new(&format!("/proc/{pid}/root")).join(path.strip_prefix("/").ok()?);
        if same_file(&rooted, dev, inode) {
            // Through our own descriptor, as /proc/PID/root goes away with the process.
            if let Ok(fd) = std::fs::File::open(&rooted) {
                return Some(by_fd(fd));
            }
        }
        let mf = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
        if let Ok(fd) = std::fs::File::open(mf) {
            return Some(by_fd(fd));
        }
        return None;
    }
    std::fs::metadata(path)
        .is_ok_and(|md| md.ino() == inode)
        .then(|| plain(path.to_path_buf()))
}

fn by_fd(fd: std::fs::File) -> OpenFile {
    use std::os::fd::AsRawFd;
    OpenFile {
        path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        _fd: Some(fd),
        go: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_of_files_jit_code_and_the_vdso() {
        let text = "\
55d0a0000000-55d0a0001000 r-xp 00002000 fd:01 1234 /usr/bin/my prog
7f0000000000-7f0000001000 rwxp 00000000 00:00 0 
7f0000002000-7f0000003000 rw-p 00000000 00:00 0 
7fff00000000-7fff00002000 r-xp 00000000 00:00 0 [vdso]
7fff00004000-7fff00005000 r--p 00000000 00:00 0 [vvar]
bad line
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 3, "{maps:?}");
        assert_eq!(
            maps[0].backing,
            Backing::File {
                path: "/usr/bin/my prog".into(),
                dev: (0xfd, 1),
                inode: 1234
            }
        );
        assert_eq!(maps[0].offset, 0x2000);
        assert_eq!(maps[1].backing, Backing::Jit);
        assert_eq!(maps[2].backing, Backing::Vdso);
    }

    /// An address in our own vdso names a vdso function, as ``[vdso]`name``.
    #[test]
    fn own_vdso_addresses_name_vdso_functions() {
        let Some(table) = own_vdso() else {
            eprintln!("skipped: no vdso mapped");
            return;
        };
        let (off, _, name) = table
            .syms
            .iter()
            .find(|s| s.2.contains("clock_gettime"))
            .expect("the vdso has clock_gettime")
            .clone();
        // x86 exports `__vdso_clock_gettime` (and a `clock_gettime` alias), arm64
        // `__kernel_clock_gettime`.
        assert!(
            name.starts_with("__vdso_") || name.starts_with("__kernel_"),
            "{name}"
        );
        let mut u = UserSymbolizer::new();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let vdso = parse_maps(&maps)
            .into_iter()
            .find(|m| m.backing == Backing::Vdso)
            .unwrap();
        let s = u.syms(std::process::id(), &[vdso.start + off + 3]);
        assert_eq!(s[0], format!("[vdso]`{name}+0x3"));
    }

    /// Each file is opened once and answers come from the cache after the first batch; an
    /// address outside every mapping stays hex.
    #[test]
    fn batches_are_cached_per_address_and_files_opened_once() {
        let _g = crate::tests::lock();
        let mut u = UserSymbolizer::new();
        let me = std::process::id();
        let f = maps_lines_of_files_jit_code_and_the_vdso as *const () as u64;
        u.prefetch(me, &[f, f + 1, 8]);
        assert_eq!(u.files.len(), 1, "one file for both addresses");
        let got = u.cache[&me][&f].clone();
        assert_eq!(u.cache[&me][&8], "0x8");
        // Cached: a changed answer would mean it was looked up again.
        u.cache.get_mut(&me).unwrap().insert(f, "cached".into());
        assert_eq!(u.syms(me, &[f, 8]), ["cached", "0x8"]);
        assert!(
            got.contains("maps_lines_of_files") || got.starts_with("0x"),
            "{got}"
        );
    }

    /// Another file where one was mapped (dlclose then dlopen, or a reused pid): the cached
    /// answers of that process are dropped.
    #[test]
    fn changed_file_mappings_forget_cached_answers() {
        let mut u = UserSymbolizer::new();
        let pid = u32::MAX - 8;
        u.keep_maps(pid, "1000-2000 r-xp 00000000 fd:01 1 /a\n");
        u.cache.entry(pid).or_default().insert(0x1000, "a`f".into());
        u.keep_maps(
            pid,
            "1000-2000 r-xp 00000000 fd:01 1 /a\n3000-4000 r-xp 0 fd:01 2 /b\n",
        );
        assert!(
            u.cache[&pid].contains_key(&0x1000),
            "a new mapping changes nothing"
        );
        u.keep_maps(pid, "1000-2000 r-xp 00000000 fd:01 3 /c\n");
        assert!(!u.cache.contains_key(&pid));
    }

    #[test]
    fn jit_addresses_are_named_by_the_perf_map() {
        let mut u = UserSymbolizer::new();
        let dir = std::env::temp_dir().join(format!("symtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let map = dir.join("perf.map");
        std::fs::write(&map, "0x7f0000000100 0x80 JS:*hot x.js:1\nnot a line\n").unwrap();
        let pid = u32::MAX - 7; // no such process: only the remembered maps count
        u.perf_maps.insert(pid, PerfMap::new(map.clone()));
        u.keep_maps(pid, "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n");
        let s = u.syms(pid, &[0x7f0000000110, 0x7f0000000200]);
        assert_eq!(s, ["JS:*hot x.js:1+0x10", "0x7f0000000200"]);
        // The JIT appended a function: the next batch finds it.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&map).unwrap();
        f.write_all(b"7f0000000200 10 cold\n").unwrap();
        u.prefetch(pid, &[0x7f0000000200]);
        assert_eq!(u.syms(pid, &[0x7f0000000200]), ["cold"]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
