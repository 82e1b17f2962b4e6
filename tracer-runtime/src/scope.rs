//! Where tracer runs and which tasks it traces (`--scope`, `-x scope=`).
//!
//! eBPF probes are system-wide. Run inside a container (a non-initial pid namespace), tracer
//! traces that namespace and its descendants by default, and numbers pids as `ps` does
//! there; on the host it traces everything. The filter is compiled into every program (see
//! tracer-lang's `lower::scope`): it is a correctness filter, not a security boundary, since
//! whoever may load tracing programs may also ask for `--scope host`.
//!
//! The kernel check needs the absolute nesting level of tracer's pid namespace, which no
//! file in a container's `/proc` shows (`NSpid` starts at the procfs's own level). It is
//! asked of the kernel: a tiny program run on tracer's own thread with `BPF_PROG_TEST_RUN`
//! reads `current->thread_pid->level`.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tracer_lang::lower::{PidOffsets, Scope};

/// `PROC_PID_INIT_INO`: the inode of the initial pid namespace.
pub const INIT_PIDNS_INO: u64 = 0xEFFF_FFFC;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The scope as asked on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeArg {
    /// pidns when tracer runs in a non-initial pid namespace, host otherwise.
    Auto,
    Host,
    PidNs,
    /// A cgroup v2 directory (absolute, or relative to the cgroup2 mount); None: tracer's own.
    Cgroup(Option<String>),
}

impl ScopeArg {
    pub fn parse(text: &str) -> Result<ScopeArg, String> {
        Ok(match text.split_once('=') {
            Some(("cgroup", path)) if !path.is_empty() => ScopeArg::Cgroup(Some(path.into())),
            None if text == "auto" => ScopeArg::Auto,
            None if text == "host" => ScopeArg::Host,
            None if text == "pidns" => ScopeArg::PidNs,
            None if text == "cgroup" => ScopeArg::Cgroup(None),
            _ => {
                return Err(format!(
                    "unknown scope \"{text}\" (use host, pidns, cgroup or cgroup=PATH)"
                ))
            }
        })
    }
}

/// A scope ready for the compiler, and what must stay open while the programs run.
pub struct Resolved {
    pub scope: Scope,
    /// The cgroup directory whose descriptor the cgroup array holds.
    pub cgroup_dir: Option<File>,
    /// One line for stderr naming what is traced (None for the host).
    pub notice: Option<String>,
}

/// The inode of tracer's own pid namespace.
pub fn own_pidns() -> Result<u64, String> {
    // stat, not lstat: the link's target is the namespace's nsfs inode.
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .map_err(|e| format!("cannot read /proc/self/ns/pid to find tracer's pid namespace: {e}"))
}

pub fn resolve(arg: &ScopeArg, kernel: &tracer_lang::btf::KernelTypes) -> Result<Resolved, String> {
    let host = || Resolved {
        scope: Scope::Host,
        cgroup_dir: None,
        notice: None,
    };
    match arg {
        ScopeArg::Host => Ok(host()),
        ScopeArg::Auto if own_pidns()? == INIT_PIDNS_INO => Ok(host()),
        ScopeArg::Auto | ScopeArg::PidNs => {
            let inum = own_pidns()?;
            let offsets = crate::kernel_offsets::pid_offsets(kernel).ok_or(
                "the pid-namespace scope needs kernel BTF (/sys/kernel/btf/vmlinux) to find struct pid; \
                 use --scope host or --scope cgroup",
            )?;
            let level = calibrate_level(&offsets, inum as u32)?;
            Ok(Resolved {
                scope: Scope::PidNs {
                    level,
                    inum: inum as u32,
                    offsets,
                },
                cgroup_dir: None,
                notice: Some(format!(
                    "tracing pid namespace {inum} (level {level}) and its descendants; --scope host traces everything"
                )),
            })
        }
        ScopeArg::Cgroup(path) => {
            let dir = cgroup_dir(path.as_deref())?;
            let file = File::open(&dir)
                .map_err(|e| format!("cannot open cgroup {}: {e}", dir.display()))?;
            Ok(Resolved {
                scope: Scope::Cgroup {
                    fd: file.as_raw_fd() as u32,
                },
                cgroup_dir: Some(file),
                notice: Some(format!("tracing cgroup {} and below", dir.display())),
            })
        }
    }
}

/// Where cgroup v2 is mounted (mount point, root of the mount inside the hierarchy), from
/// `/proc/self/mountinfo`. On a hybrid host that is e.g. `/sys/fs/cgroup/unified`.
pub fn cgroup2_mount() -> Option<(PathBuf, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split(' ').next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = pre.split(' ').collect();
        Some((PathBuf::from(unescape(f.get(4)?)), unescape(f.get(3)?)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path of tracer itself (the `0::` line of /proc/self/cgroup).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

fn is_cgroup2(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a valid C string and a zeroed statfs buffer the call fills.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
    }
}

/// The directory of a cgroup-v2 scope: PATH as given when it is a cgroup2 directory, else
/// PATH under the cgroup2 mount; tracer's own cgroup without PATH.
fn cgroup_dir(path: Option<&str>) -> Result<PathBuf, String> {
    let (mount, root) = cgroup2_mount().ok_or(
        "--scope cgroup needs cgroup v2, and no cgroup2 file system is mounted \
         (mount one: mount -t cgroup2 none /sys/fs/cgroup, or use --scope pidns)",
    )?;
    let dir = match path {
        Some(p) if Path::new(p).is_absolute() && is_cgroup2(Path::new(p)) => PathBuf::from(p),
        Some(p) => mount.join(p.trim_start_matches('/')),
        None => {
            let own = own_cgroup().ok_or(
                "--scope cgroup: tracer is in no cgroup v2 group (no 0:: line in /proc/self/cgroup)",
            )?;
            // /proc/self/cgroup is relative to the cgroup namespace; the mount's root too.
            let rel = own.strip_prefix(root.as_str()).unwrap_or(&own);
            mount.join(rel.trim_start_matches('/'))
        }
    };
    if !dir.is_dir() || !is_cgroup2(&dir) {
        return Err(format!(
            "--scope cgroup: {} is not a cgroup v2 directory (cgroup2 is mounted at {})",
            path.unwrap_or("(tracer's own cgroup)"),
            mount.display()
        ));
    }
    Ok(dir)
}

/// The absolute level of tracer's pid namespace, read in the kernel from tracer's own task
/// (see the module documentation). Also proves the offsets right: the namespace found at
/// that level must be the one /proc/self/ns/pid names.
fn calibrate_level(o: &PidOffsets, inum: u32) -> Result<u32, String> {
    use tracer_ebpf::insn::{helper, AluOp, Insn, JmpOp, Reg, Size};
    let read = |dst_size: i32| {
        vec![
            Insn::mov64_reg(Reg::R1, Reg::FP),
            Insn::alu64_imm(AluOp::Add, Reg::R1, -8),
            Insn::mov64_imm(Reg::R2, dst_size),
            Insn::call(helper::PROBE_READ_KERNEL),
        ]
    };
    let mut p = vec![Insn::st_imm(Size::DW, Reg::FP, -8, 0)];
    p.push(Insn::call(helper::GET_CURRENT_TASK));
    p.push(Insn::mov64_reg(Reg::R3, Reg::R0));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R3, o.thread_pid as i32));
    p.extend(read(8));
    p.push(Insn::ldx(Size::DW, Reg::R6, Reg::FP, -8)); // struct pid *
    p.push(Insn::mov64_reg(Reg::R3, Reg::R6));
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R3, o.pid_level as i32));
    p.extend(read(4));
    p.push(Insn::ldx(Size::W, Reg::R7, Reg::FP, -8)); // level
    p.push(Insn::mov64_reg(Reg::R3, Reg::R7));
    p.push(Insn::alu64_imm(AluOp::Mul, Reg::R3, o.upid_size as i32));
    p.push(Insn::alu64_reg(AluOp::Add, Reg::R3, Reg::R6));
    p.push(Insn::alu64_imm(
        AluOp::Add,
        Reg::R3,
        (o.pid_numbers + o.upid_ns) as i32,
    ));
    p.extend(read(8));
    p.push(Insn::ldx(Size::DW, Reg::R3, Reg::FP, -8)); // numbers[level].ns
    p.push(Insn::alu64_imm(AluOp::Add, Reg::R3, o.ns_inum as i32));
    p.push(Insn::st_imm(Size::DW, Reg::FP, -8, 0));
    p.extend(read(4));
    p.push(Insn::ldx(Size::W, Reg::R8, Reg::FP, -8)); // its inode number
    p.extend(Insn::ld_imm64(Reg::R1, inum as u64));
    p.push(Insn::mov64_imm(Reg::R0, -1));
    p.push(Insn::jmp_reg(JmpOp::Jne, Reg::R8, Reg::R1, 1));
    p.push(Insn::mov64_reg(Reg::R0, Reg::R7));
    p.push(Insn::exit());
    let code: Vec<u8> = p.iter().flat_map(|i| i.encode()).collect();
    let prog = load_raw_tracepoint(&code).map_err(|e| {
        format!(
            "cannot load the pid-namespace probe ({e}); {}",
            privilege_hint()
        )
    })?;
    let level = crate::session::test_run(prog.as_raw_fd())
        .map_err(|e| format!("cannot run the pid-namespace probe: {e}"))?;
    if level == u32::MAX {
        return Err(format!(
            "the kernel does not show tracer's pid namespace {inum} where BTF says it is; use --scope host or --scope cgroup"
        ));
    }
    Ok(level)
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;

fn load_raw_tracepoint(code: &[u8]) -> std::io::Result<OwnedFd> {
    // The leading fields of union bpf_attr for BPF_PROG_LOAD; the rest stays zero.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        rest: [u8; 96],
    }
    let license = c"GPL";
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_RAW_TRACEPOINT,
        insn_cnt: (code.len() / 8) as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        rest: [0; 96],
    };
    // SAFETY: `attr` and the buffers it points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

fn effective_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// True when tracer runs in a user namespace other than the initial one: capabilities
/// there do not allow loading tracing programs.
fn in_user_namespace() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let fields: Vec<&str> = map.split_whitespace().collect();
    !(fields.is_empty() || fields == ["0", "0", "4294967295"])
}

/// What to add so that tracing is allowed, in one line.
pub fn privilege_hint() -> String {
    if in_user_namespace() {
        return "tracer runs in a user namespace, where capabilities do not allow tracing: run it \
                without one (docker --userns=host, Kubernetes hostUsers: true, rootful podman)"
            .into();
    }
    let caps = effective_caps();
    let missing: Vec<&str> = [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .iter()
    .filter(|(bit, _)| caps & (1u64 << bit) == 0)
    .map(|(_, n)| *n)
    .collect();
    if missing.is_empty() {
        return "tracer has CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN; check the kernel log".into();
    }
    format!(
        "missing {}: run as root, or add them (docker/podman: --privileged, or --cap-add {})",
        missing.join(", "),
        missing
            .iter()
            .map(|c| c.trim_start_matches("CAP_"))
            .collect::<Vec<_>>()
            .join(" --cap-add ")
    )
}

/// Fail early, with one line saying what to add, when tracer cannot trace. uprobes need
/// CAP_SYS_ADMIN again since Linux 6.16 (and stable backports), tracepoints and perf events
/// need CAP_BPF + CAP_PERFMON.
pub fn check_privileges() -> Result<(), String> {
    let caps = effective_caps();
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if in_user_namespace() || !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        return Err(format!(
            "insufficient privileges to trace: {}",
            privilege_hint()
        ));
    }
    raise_memlock();
    Ok(())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK, and containers often start with
/// 64 KiB. Raise it as far as allowed (to infinity with CAP_SYS_RESOURCE, else to the hard
/// limit); newer kernels account memory to the cgroup and ignore it.
fn raise_memlock() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) != 0 || r.rlim_cur == libc::RLIM_INFINITY {
            return;
        }
        let inf = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) != 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scopes() {
        assert_eq!(ScopeArg::parse("host"), Ok(ScopeArg::Host));
        assert_eq!(ScopeArg::parse("pidns"), Ok(ScopeArg::PidNs));
        assert_eq!(ScopeArg::parse("cgroup"), Ok(ScopeArg::Cgroup(None)));
        assert_eq!(
            ScopeArg::parse("cgroup=/a/b"),
            Ok(ScopeArg::Cgroup(Some("/a/b".into())))
        );
        assert!(ScopeArg::parse("cgroup=").is_err());
        assert!(ScopeArg::parse("zone").is_err());
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn calibrates_the_host_level() {
        // On the host (where the tests run as root) tracer's namespace is the initial one.
        if own_pidns().ok() != Some(INIT_PIDNS_INO) || effective_caps() & (1 << CAP_SYS_ADMIN) == 0
        {
            eprintln!("skipped: needs root in the initial pid namespace");
            return;
        }
        let r = resolve(&ScopeArg::PidNs, &tracer_lang::btf::KernelTypes::system())
            .expect("pidns scope on the host");
        match r.scope {
            Scope::PidNs { level, inum, .. } => {
                assert_eq!((level, inum as u64), (0, INIT_PIDNS_INO))
            }
            other => panic!("{other:?}"),
        }
    }
}
