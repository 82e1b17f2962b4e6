//! The dynamic linker of a traced process, as DTrace's rtld_db sees it: where the program
//! starts (AT_ENTRY, the post-init point: the libraries it needs are mapped and initialized),
//! and `_r_debug.r_brk`, the function ld.so calls around every dlopen()/dlclose().
//!
//! Debian's ld.so is stripped: `_r_debug` is in .dynsym but `_dl_debug_state` is not, so
//! `r_brk` is read from the process once ld.so has set it up (at AT_ENTRY it has).

use super::symbolize::{parse_maps, Backing, Mapping};
use object::{Object, ObjectSymbol};
use std::io;
use std::path::{Path, PathBuf};

const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;

/// The process's AT_ENTRY and AT_BASE (0 when it has no interpreter: a static program).
pub fn entry_and_base(pid: u32) -> io::Result<(u64, u64)> {
    let data = std::fs::read(format!("/proc/{pid}/auxv"))?;
    let (mut entry, mut base) = (0, 0);
    for pair in data.chunks_exact(16) {
        let key = u64::from_ne_bytes(pair[..8].try_into().unwrap_or_default());
        let value = u64::from_ne_bytes(pair[8..].try_into().unwrap_or_default());
        match key {
            AT_ENTRY => entry = value,
            AT_BASE => base = value,
            _ => {}
        }
    }
    Ok((entry, base))
}

/// `len` bytes of the process's memory at `addr`.
pub fn read_memory(pid: u32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, addr)?;
    Ok(buf)
}

fn read_u64(pid: u32, addr: u64) -> io::Result<u64> {
    let b = read_memory(pid, addr, 8)?;
    Ok(u64::from_ne_bytes(b[..8].try_into().unwrap_or_default()))
}

/// Every file-backed mapping of the process (executable or not), with the file's path as
/// the process names it.
fn file_mappings(pid: u32) -> io::Result<Vec<(Mapping, PathBuf)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(parse_maps(&text)
        .into_iter()
        .filter_map(|m| match &m.backing {
            Backing::File { path, .. } => {
                let path = path.clone();
                Some((m, path))
            }
            _ => None,
        })
        .collect())
}

/// The dynamic linker's `r_debug`: where it lives, and the file and file offset of `r_brk`
/// (for a uprobe there).
#[derive(Debug, Clone)]
pub struct Rtld {
    pub r_debug: u64,
    /// The interpreter, seen through the process's root.
    pub path: PathBuf,
    pub brk_offset: u64,
}

/// `r_state` is the fourth field of `struct r_debug` (int, pointer, pointer, enum).
pub const R_STATE_OFFSET: u64 = 24;
const R_BRK_OFFSET: u64 = 16;

/// Find `_r_debug` in the interpreter mapped at `base` and read its `r_brk`. Fails when ld.so
/// has not set it up yet or names no `_r_debug` (not glibc's).
pub fn find(pid: u32, base: u64) -> Result<Rtld, String> {
    let maps = file_mappings(pid).map_err(|e| format!("cannot read /proc/{pid}/maps: {e}"))?;
    let (_, ld) = maps
        .iter()
        .find(|(m, _)| m.start == base)
        .ok_or_else(|| format!("no mapping at the interpreter's base {base:#x}"))?;
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));
    let shown = ld.display();
    let data = std::fs::read(inside(ld)).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{shown}: {e}"))?;
    let sym = file
        .dynamic_symbols()
        .chain(file.symbols())
        .find(|s| s.name() == Ok("_r_debug"))
        .ok_or_else(|| format!("{shown} has no _r_debug symbol"))?;
    // ld.so is linked at 0: its symbols are offsets from where it is mapped.
    let r_debug = base + sym.address();
    let brk = read_u64(pid, r_debug + R_BRK_OFFSET)
        .map_err(|e| format!("cannot read _r_debug.r_brk of pid {pid}: {e}"))?;
    if brk == 0 {
        return Err(format!(
            "the dynamic linker of pid {pid} has not set r_brk yet"
        ));
    }
    let (m, path) = maps
        .iter()
        .find(|(m, _)| m.start <= brk && brk < m.end)
        .ok_or_else(|| format!("r_brk {brk:#x} of pid {pid} is not in a mapped file"))?;
    Ok(Rtld {
        r_debug,
        path: inside(path),
        brk_offset: brk - m.start + m.offset,
    })
}

/// [`find`] for a process that has run past its start (a `-p` process): the interpreter's
/// base from its auxiliary vector.
pub fn find_running(pid: u32) -> Result<Rtld, String> {
    let (_, base) =
        entry_and_base(pid).map_err(|e| format!("cannot read /proc/{pid}/auxv: {e}"))?;
    if base == 0 {
        return Err(format!(
            "pid {pid} is statically linked: it loads no libraries"
        ));
    }
    find(pid, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test process is dynamically linked (as cargo builds it): its ld.so has set
    /// `r_brk`, inside the interpreter's own file.
    #[test]
    fn own_dynamic_linker_is_found() {
        let pid = std::process::id();
        let (entry, base) = entry_and_base(pid).unwrap();
        assert!(entry != 0);
        if base == 0 {
            eprintln!("skipped: this test binary is static");
            return;
        }
        let rtld = find_running(pid).unwrap();
        let name = rtld
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("ld-"), "{}", rtld.path.display());
        // r_state is RT_CONSISTENT (0) now that nothing is being loaded.
        let state = read_memory(pid, rtld.r_debug + R_STATE_OFFSET, 4).unwrap();
        assert_eq!(state, [0, 0, 0, 0]);
        assert!(find_running(0x3fff_fff0).is_err());
    }
}
