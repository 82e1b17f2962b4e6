//! uprobe_multi (Linux 6.6+): one program attached at many uprobe sites through one link,
//! with a cookie per site. Attaching or detaching uprobes one perf event at a time costs the
//! kernel an SRCU grace period each, serialized (~0.1 s per site when detaching here: 160 s
//! for python3.11's 1,474 functions); a uprobe_multi link registers all sites in one call
//! and waits for one grace period when it is closed. aya 0.14 has no uprobe_multi, so the
//! program is loaded and linked as kprobe_multi's are (see `kprobe_multi`).

use super::kprobe_multi::{bpf, load_as, Error, BPF_LINK_CREATE};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use tracer_common::{script::ProgramDesc, Attach};

pub const BPF_TRACE_UPROBE_MULTI: u32 = 48;
const BPF_F_UPROBE_MULTI_RETURN: u32 = 1;

/// Load `insns` as a program uprobe_multi links accept.
pub fn load(insns: &[u8], prog_name: &str) -> Result<OwnedFd, Error> {
    load_as(insns, prog_name, BPF_TRACE_UPROBE_MULTI)
}

/// Whether this kernel has uprobe_multi. Kernels before 6.6 load a kprobe program with the
/// attach type without complaint and refuse only the link, so both are tried: a link at
/// file offset 0 of tracer's own binary, which is never executable code, so nothing fires.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        // r0 = 0; exit
        let insns: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        let Ok(prog) = load(&insns, "probe_umulti") else {
            return false;
        };
        attach(
            &prog,
            "/proc/self/exe",
            &[0],
            &[0],
            false,
            Some(std::process::id()),
        )
        .is_ok()
    })
}

/// Link `prog` at `offsets` (file offsets) of `path`, cookie `cookies[i]` for site `i`, in
/// process `pid` only when given.
pub fn attach(
    prog: &OwnedFd,
    path: &str,
    offsets: &[u64],
    cookies: &[u64],
    ret: bool,
    pid: Option<u32>,
) -> Result<OwnedFd, String> {
    let cpath = CString::new(path).map_err(|_| format!("bad path {path:?}"))?;
    let mut attr = [0u8; 64];
    attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_TRACE_UPROBE_MULTI.to_ne_bytes());
    attr[16..24].copy_from_slice(&(cpath.as_ptr() as u64).to_ne_bytes());
    attr[24..32].copy_from_slice(&(offsets.as_ptr() as u64).to_ne_bytes());
    attr[40..48].copy_from_slice(&(cookies.as_ptr() as u64).to_ne_bytes());
    attr[48..52].copy_from_slice(&(offsets.len() as u32).to_ne_bytes());
    let flags = if ret { BPF_F_UPROBE_MULTI_RETURN } else { 0 };
    attr[52..56].copy_from_slice(&flags.to_ne_bytes());
    attr[56..60].copy_from_slice(&pid.unwrap_or(0).to_ne_bytes());
    let fd = bpf(BPF_LINK_CREATE, &attr);
    if fd < 0 {
        return Err(format!(
            "attaching at {} sites of {path} with uprobe_multi: {}",
            offsets.len(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a new descriptor the kernel gave us; closing it detaches every site.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Load a shared program's instructions and link them at every site of `sites` (one path,
/// kind and pid); each site's cookie is its site index (`ProgramDesc::sites`). Returns the
/// link and the program.
pub fn attach_sites(sites: &[&ProgramDesc], insns: &[u8]) -> Result<(OwnedFd, OwnedFd), Error> {
    let desc = sites[0];
    let Attach::Uprobe { path, ret, pid, .. } = &desc.attach else {
        return Err(Error::Other(format!("{} is not a uprobe", desc.name)));
    };
    let mut offsets = Vec::with_capacity(sites.len());
    let mut cookies = Vec::with_capacity(sites.len());
    for s in sites {
        match &s.attach {
            Attach::Uprobe {
                path: p2,
                offset,
                ret: r2,
                pid: pid2,
                ..
            } if p2 == path && r2 == ret && pid2 == pid => {
                offsets.push(*offset);
                cookies.push(s.sites.first().copied().unwrap_or(s.probe) as u64);
            }
            other => {
                return Err(Error::Other(format!(
                    "program {} shared with an unlike probe {other:?}",
                    desc.name
                )))
            }
        }
    }
    let prog = load(insns, &desc.name)?;
    let link = attach(&prog, path, &offsets, &cookies, *ret, *pid).map_err(Error::Other)?;
    Ok((link, prog))
}

/// Raise the soft RLIMIT_NOFILE to the hard limit: thousands of uprobes need thousands of
/// descriptors, and the soft limit is often 1024.
pub fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}
