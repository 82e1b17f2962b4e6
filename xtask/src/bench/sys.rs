//! The few system calls the benchmark needs, declared by hand so that the xtask keeps its
//! one dependency: waiting for a child with its resource usage, signals, the getpgid()
//! trigger, and the bpf(2) commands that read a loaded program's size.

use std::os::raw::{c_int, c_long, c_uint, c_void};

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Timeval {
    sec: c_long,
    usec: c_long,
}

/// `struct rusage`: two timevals and fourteen longs, ru_maxrss first.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: c_long,
    rest: [c_long; 13],
}

impl Rusage {
    /// Peak resident set size in KiB.
    pub fn maxrss_kib(&self) -> u64 {
        self.maxrss.max(0) as u64
    }
    /// User + system CPU time in seconds.
    pub fn cpu_secs(&self) -> f64 {
        let t = |v: &Timeval| v.sec as f64 + v.usec as f64 / 1e6;
        t(&self.utime) + t(&self.stime)
    }
}

extern "C" {
    fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getpgid(pid: c_int) -> c_int;
    fn getsid(pid: c_int) -> c_int;
    fn getpid() -> c_int;
    fn geteuid() -> c_uint;
    fn close(fd: c_int) -> c_int;
    fn syscall(num: c_long, ...) -> c_long;
}

pub const SIGINT: c_int = 2;
pub const SIGKILL: c_int = 9;
const WNOHANG: c_int = 1;

pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { geteuid() == 0 }
}

pub fn my_pid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { getpid() }
}

/// The triggers the benchmark scripts watch for: `getpgid(0)` and `getsid(0)` from this
/// process.
pub fn trigger() {
    // SAFETY: no preconditions.
    unsafe {
        getpgid(0);
        getsid(0);
    }
}

pub fn signal(pid: i32, sig: c_int) {
    // SAFETY: sending a signal to our own child.
    unsafe {
        kill(pid, sig);
    }
}

/// How a reaped child ended.
#[derive(Clone, Copy)]
pub struct Exit {
    pub status: c_int,
    pub rusage: Rusage,
}

impl Exit {
    pub fn success(&self) -> bool {
        // WIFEXITED && WEXITSTATUS == 0
        self.status & 0x7f == 0 && (self.status >> 8) & 0xff == 0
    }
    pub fn describe(&self) -> String {
        if self.status & 0x7f == 0 {
            format!("exit status {}", (self.status >> 8) & 0xff)
        } else {
            format!("signal {}", self.status & 0x7f)
        }
    }
}

/// Reap `pid` if it has ended (`block` = wait for it).
pub fn reap(pid: i32, block: bool) -> Option<Exit> {
    let mut status = 0;
    let mut rusage = Rusage::default();
    loop {
        // SAFETY: valid out pointers; pid is our child.
        let r = unsafe {
            wait4(
                pid,
                &mut status,
                if block { 0 } else { WNOHANG },
                &mut rusage,
            )
        };
        if r == pid {
            return Some(Exit { status, rusage });
        }
        if r == 0 {
            return None;
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(4) {
            continue; // EINTR
        }
        // ECHILD: already reaped (should not happen); report a neutral exit.
        return Some(Exit { status: 0, rusage });
    }
}

#[cfg(target_arch = "x86_64")]
const SYS_BPF: c_long = 321;
#[cfg(target_arch = "aarch64")]
const SYS_BPF: c_long = 280;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_BPF: c_long = -1;

const BPF_PROG_GET_NEXT_ID: c_long = 11;
const BPF_PROG_GET_FD_BY_ID: c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: c_long = 15;

fn bpf(cmd: c_long, attr: &mut [u8]) -> c_long {
    // SAFETY: attr is a valid, zero-initialised bpf_attr buffer of the given size.
    unsafe {
        syscall(
            SYS_BPF,
            cmd,
            attr.as_mut_ptr() as *mut c_void,
            attr.len() as c_uint,
        )
    }
}

/// What the kernel says about one loaded program (`struct bpf_prog_info`).
#[derive(Clone, Debug, Default)]
pub struct ProgInfo {
    /// Instructions after the verifier's rewrites (xlated_prog_len / 8).
    pub xlated_insns: u32,
    /// Bytes of native code.
    pub jited_bytes: u32,
    /// Instructions the verifier walked (kernel 5.16+; 0 when unknown).
    pub verified_insns: u32,
}

/// Every BPF program loaded in the system (bpf(BPF_PROG_GET_NEXT_ID)).
pub fn all_prog_ids() -> Vec<u32> {
    let mut ids = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = [0u8; 16];
        attr[0..4].copy_from_slice(&id.to_ne_bytes());
        if bpf(BPF_PROG_GET_NEXT_ID, &mut attr) < 0 {
            return ids;
        }
        id = u32::from_ne_bytes(attr[4..8].try_into().unwrap());
        ids.push(id);
    }
}

/// bpf(BPF_PROG_GET_FD_BY_ID) + bpf(BPF_OBJ_GET_INFO_BY_FD) for one program id.
pub fn prog_info(id: u32) -> Option<ProgInfo> {
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&id.to_ne_bytes());
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return None;
    }
    let fd = fd as c_int;
    // struct bpf_prog_info is 232 bytes on 6.x; bytes the kernel does not know must be 0.
    let mut info = vec![0u8; 256];
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&(fd as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    let r = bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr);
    // SAFETY: fd came from the kernel above.
    unsafe { close(fd) };
    if r < 0 {
        return None;
    }
    // Offsets in struct bpf_prog_info: jited_prog_len 16, xlated_prog_len 20,
    // verified_insns 216.
    let u32_at = |o: usize| u32::from_ne_bytes(info[o..o + 4].try_into().unwrap());
    Some(ProgInfo {
        jited_bytes: u32_at(16),
        xlated_insns: u32_at(20) / 8,
        verified_insns: u32_at(216),
    })
}

/// The BPF objects a process holds open, read from /proc/PID/fd and /proc/PID/fdinfo.
#[derive(Clone, Debug, Default)]
pub struct BpfFds {
    pub prog_ids: Vec<u32>,
    /// memlock bytes of every map, and the map types ("ringbuf" etc. as numbers).
    pub maps: Vec<(u32, u64)>,
    pub prog_memlock: u64,
}

impl BpfFds {
    pub fn map_bytes(&self) -> u64 {
        self.maps.iter().map(|m| m.1).sum()
    }
}

pub fn bpf_fds(pid: i32) -> BpfFds {
    let mut out = BpfFds::default();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    let mut seen_progs = std::collections::BTreeSet::new();
    let mut seen_maps = std::collections::BTreeSet::new();
    for entry in dir.flatten() {
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        let is_prog = link == "anon_inode:bpf-prog";
        let is_map = link == "anon_inode:bpf-map";
        if !is_prog && !is_map {
            continue;
        }
        let fdinfo = format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_string_lossy());
        let Ok(text) = std::fs::read_to_string(fdinfo) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
        };
        let memlock = field("memlock").unwrap_or(0);
        if is_prog {
            if let Some(id) = field("prog_id") {
                if seen_progs.insert(id) {
                    out.prog_ids.push(id as u32);
                    out.prog_memlock += memlock;
                }
            }
        } else if let Some(id) = field("map_id") {
            if seen_maps.insert(id) {
                out.maps
                    .push((field("map_type").unwrap_or(0) as u32, memlock));
            }
        }
    }
    out.prog_ids.sort_unstable();
    out
}

/// VmHWM (peak RSS) of a live process, in KiB.
pub fn vm_hwm_kib(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
