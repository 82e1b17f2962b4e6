//! kprobe_multi (Linux 5.18+): one program attached to many kernel functions through one
//! link, with a cookie per function. aya 0.14 can neither load a program with the
//! `BPF_TRACE_KPROBE_MULTI` attach type nor create the link, so this file does both: it
//! takes the program's instructions from tracer's own ELF, points its map loads at the maps
//! aya created, loads it, and links it.

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
pub(super) const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_KPROBE: u32 = 2;
pub const BPF_TRACE_KPROBE_MULTI: u32 = 42;
const BPF_F_KPROBE_MULTI_RETURN: u32 = 1;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_PSEUDO_MAP_VALUE: u8 = 2;

/// Why loading or attaching failed.
pub enum Error {
    /// The verifier refused the program: its message and log.
    Verifier(String, String),
    Other(String),
}

/// The instructions of program `name` in `elf`, with every map load pointing at the map
/// descriptor `map_fd` gives for the map's name.
pub fn instructions(
    elf: &[u8],
    name: &str,
    map_fd: impl Fn(&str) -> Option<i32>,
) -> Result<Vec<u8>, String> {
    let file = object::File::parse(elf).map_err(|e| format!("reading the object: {e}"))?;
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(name))
        .ok_or_else(|| format!("no program {name} in the object"))?;
    let section = file
        .section_by_index(sym.section_index().ok_or("program without a section")?)
        .map_err(|e| e.to_string())?;
    let data = section.data().map_err(|e| e.to_string())?;
    let start = sym.address() as usize;
    let mut insns = data
        .get(start..start + sym.size() as usize)
        .ok_or("program outside its section")?
        .to_vec();
    for (offset, reloc) in section.relocations() {
        let RelocationTarget::Symbol(target) = reloc.target() else {
            continue;
        };
        let map = file
            .symbol_by_index(target)
            .and_then(|s| s.name().map(str::to_string))
            .map_err(|e| e.to_string())?;
        let fd = map_fd(&map).ok_or_else(|| format!("no map `{map}`"))?;
        let at = offset as usize - start;
        // LD_IMM64: src_reg (high nibble of byte 1) says what imm holds: a map descriptor,
        // or for a global-data map (`.data*`) the map whose value address is loaded, with
        // the offset into the value in the second slot's imm (left as written).
        let kind = if map.starts_with(".data") {
            BPF_PSEUDO_MAP_VALUE
        } else {
            BPF_PSEUDO_MAP_FD
        };
        insns[at + 1] = (insns[at + 1] & 0x0f) | (kind << 4);
        insns[at + 4..at + 8].copy_from_slice(&fd.to_ne_bytes());
    }
    Ok(insns)
}

pub(super) fn bpf(cmd: libc::c_long, attr: &[u8]) -> i64 {
    // SAFETY: `attr` is a zero-padded bpf_attr for `cmd`; pointers in it outlive the call.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), attr.len() as u32) }
}

/// Load `insns` as a kprobe program that kprobe_multi links accept.
pub fn load(insns: &[u8], prog_name: &str) -> Result<OwnedFd, Error> {
    load_as(insns, prog_name, BPF_TRACE_KPROBE_MULTI)
}

/// Load `insns` as a kprobe-type program with `attach_type` as its expected attach type
/// (kprobe_multi, or uprobe_multi for `super::uprobe_multi`).
pub fn load_as(insns: &[u8], prog_name: &str, attach_type: u32) -> Result<OwnedFd, Error> {
    let license = c"GPL";
    let mut log = vec![0u8; 1 << 20];
    let mut name = [0u8; 16];
    let n = prog_name.len().min(15);
    name[..n].copy_from_slice(&prog_name.as_bytes()[..n]);
    let mut attr = [0u8; 128];
    let put32 =
        |a: &mut [u8; 128], off: usize, v: u32| a[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 =
        |a: &mut [u8; 128], off: usize, v: u64| a[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    put32(&mut attr, 0, BPF_PROG_TYPE_KPROBE);
    put32(&mut attr, 4, (insns.len() / 8) as u32);
    put64(&mut attr, 8, insns.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    attr[48..64].copy_from_slice(&name);
    put32(&mut attr, 68, attach_type);
    let mut fd = bpf(BPF_PROG_LOAD, &attr);
    if fd < 0 {
        // Again with the verifier's log, to say why.
        put32(&mut attr, 24, 1);
        put32(&mut attr, 28, log.len() as u32);
        put64(&mut attr, 32, log.as_mut_ptr() as u64);
        fd = bpf(BPF_PROG_LOAD, &attr);
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            return Err(if text.is_empty() {
                Error::Other(format!("loading the kprobe_multi program: {err}"))
            } else {
                Error::Verifier(err.to_string(), text)
            });
        }
    }
    // SAFETY: a new descriptor the kernel gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Link `prog` to `functions` (cookie `cookies[i]` for function `i`; none when empty).
pub fn attach(
    prog: &OwnedFd,
    functions: &[String],
    ret: bool,
    cookies: &[u64],
) -> Result<OwnedFd, String> {
    let names: Vec<CString> = functions
        .iter()
        .map(|f| CString::new(f.as_str()).map_err(|_| format!("bad function name {f:?}")))
        .collect::<Result<_, _>>()?;
    let ptrs: Vec<u64> = names.iter().map(|n| n.as_ptr() as u64).collect();
    if !cookies.is_empty() && cookies.len() != functions.len() {
        return Err(format!(
            "{} cookies for {} functions",
            cookies.len(),
            functions.len()
        ));
    }
    let mut attr = [0u8; 64];
    attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_TRACE_KPROBE_MULTI.to_ne_bytes());
    let flags = if ret { BPF_F_KPROBE_MULTI_RETURN } else { 0 };
    attr[16..20].copy_from_slice(&flags.to_ne_bytes());
    attr[20..24].copy_from_slice(&(functions.len() as u32).to_ne_bytes());
    attr[24..32].copy_from_slice(&(ptrs.as_ptr() as u64).to_ne_bytes());
    if !cookies.is_empty() {
        attr[40..48].copy_from_slice(&(cookies.as_ptr() as u64).to_ne_bytes());
    }
    let fd = bpf(BPF_LINK_CREATE, &attr);
    if fd < 0 {
        return Err(format!(
            "attaching to {} functions with kprobe_multi: {}",
            functions.len(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a new descriptor the kernel gave us; closing it detaches every probe.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether this kernel has kprobe_multi: load an empty program and link it to `function`.
pub fn works(function: &str) -> Result<(), String> {
    // r0 = 0; exit
    let insns: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let prog = load(&insns, "probe_multi").map_err(|e| match e {
        Error::Verifier(m, _) | Error::Other(m) => m,
    })?;
    attach(&prog, &[function.to_string()], false, &[]).map(drop)
}
