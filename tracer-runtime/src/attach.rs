//! Loading and attaching each program of a session, per kind of attach point: tracepoints,
//! raw tracepoints, perf events, kprobes, fentry/fexit, uprobes (with USDT semaphores and
//! uprobe_multi groups) and kprobe_multi globs.

use super::session::{chain, RuntimeError, Session};
use super::trigger::Trigger;
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeScope};
use aya::programs::{
    FEntry, FExit, KProbe, PerfEvent, ProbeKind, ProgramError, RawTracePoint, TracePoint, UProbe,
};
use std::collections::HashSet;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use tracer_common::{Attach, ProgramDesc};

/// `perf_event_attr` up to `config2` (PERF_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
}

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

fn read_sysfs_u64(path: &str) -> io::Result<u64> {
    let s = std::fs::read_to_string(path)?;
    s.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("{path}: unexpected contents {s:?}")))
}

/// A uprobe with a USDT semaphore: aya never sets `ref_ctr_offset`, so open the uprobe PMU
/// event ourselves (`config` bits 32-63 = ref_ctr_offset) and attach with SET_BPF.
fn open_uprobe_with_semaphore(
    prog: &UProbe,
    path: &str,
    offset: u64,
    ret: bool,
    pid: Option<u32>,
    ref_ctr: u64,
) -> io::Result<OwnedFd> {
    let prog_fd = prog.fd().map_err(io::Error::other)?.as_fd().as_raw_fd();
    open_uprobe(prog_fd, path, offset, ret, pid, ref_ctr)
}

/// A uprobe PMU event at `offset` of `path` (with semaphore `ref_ctr` unless 0) running the
/// kprobe-type program `prog_fd`; closing the returned descriptor detaches it.
pub(super) fn open_uprobe(
    prog_fd: std::os::fd::RawFd,
    path: &str,
    offset: u64,
    ret: bool,
    pid: Option<u32>,
    ref_ctr: u64,
) -> io::Result<OwnedFd> {
    let pmu = "/sys/bus/event_source/devices/uprobe";
    let type_ = read_sysfs_u64(&format!("{pmu}/type"))? as u32;
    // Without the field (kernels before 4.20) the offset would be ignored and a gated probe
    // would never fire: say so instead.
    if ref_ctr != 0 && !Path::new(&format!("{pmu}/format/ref_ctr_offset")).exists() {
        return Err(io::Error::other(
            "this kernel cannot set USDT semaphores (uprobe ref_ctr_offset needs Linux 4.20)",
        ));
    }
    let mut config = ref_ctr << 32;
    if ret {
        let fmt = std::fs::read_to_string(format!("{pmu}/format/retprobe"))?;
        let bit: u64 = fmt
            .trim()
            .trim_start_matches("config:")
            .parse()
            .unwrap_or(0);
        config |= 1 << bit;
    }
    let cpath = std::ffi::CString::new(path).map_err(io::Error::other)?;
    let attr = PerfEventAttr {
        type_,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config,
        sample_period: 1,
        flags: 1, // disabled until the program is set
        wakeup_events: 1,
        config1: cpath.as_ptr() as u64,
        config2: offset,
        ..Default::default()
    };
    let (pid, cpu) = match pid {
        Some(p) => (p as libc::c_int, -1),
        None => (-1, 0),
    };
    // SAFETY: `attr` and the path it points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: ioctls on a perf event fd we own, with a program fd argument.
    unsafe {
        if libc::ioctl(
            fd.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as libc::Ioctl,
            prog_fd,
        ) < 0
            || libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE as libc::Ioctl, 0) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

impl Session {
    pub(super) fn probe_name(&self, desc: &ProgramDesc) -> String {
        self.script
            .probes
            .get(desc.probe as usize)
            .map_or_else(|| desc.name.clone(), |p| p.full_name())
    }

    /// A kprobe_multi program, loaded and linked by tracer itself (see `kprobe_multi`).
    pub(super) fn attach_multi(
        &mut self,
        desc: &ProgramDesc,
        elf: &[u8],
    ) -> Result<(), RuntimeError> {
        let Attach::KprobeMulti { functions, ret } = &desc.attach else {
            unreachable!("attach_multi on {:?}", desc.attach)
        };
        let probe = self.probe_name(desc);
        let attach_err = |reason: String| RuntimeError::Attach {
            probe: probe.clone(),
            reason,
        };
        let insns = super::kprobe_multi::instructions(elf, &desc.name, |m| {
            self.raw_map(m).ok().map(|r| r.fd.as_raw_fd())
        })
        .map_err(attach_err)?;
        let prog = super::kprobe_multi::load(&insns, &desc.name)
            .map_err(|e| load_error(e, &desc.name, &probe))?;
        // Function `i`'s cookie is its site, `sites[i]`.
        let cookies: Vec<u64> = desc.sites.iter().map(|&s| s as u64).collect();
        let link =
            super::kprobe_multi::attach(&prog, functions, *ret, &cookies).map_err(attach_err)?;
        self.manual.push((desc.name.clone(), link));
        self.own_programs.push((desc.name.clone(), prog));
        Ok(())
    }

    /// The uprobe sites of one shared program as one uprobe_multi link (see `uprobe_multi`).
    pub(super) fn attach_uprobe_multi(
        &mut self,
        sites: &[&ProgramDesc],
        elf: &[u8],
    ) -> Result<(), RuntimeError> {
        let desc = sites[0];
        let probe = self.probe_name(desc);
        let attach_err = |reason: String| RuntimeError::Attach {
            probe: probe.clone(),
            reason,
        };
        let insns = super::kprobe_multi::instructions(elf, &desc.name, |m| {
            self.raw_map(m).ok().map(|r| r.fd.as_raw_fd())
        })
        .map_err(attach_err)?;
        let (link, prog) = super::uprobe_multi::attach_sites(sites, &insns)
            .map_err(|e| load_error(e, &desc.name, &probe))?;
        self.manual.push((desc.name.clone(), link));
        self.own_programs.push((desc.name.clone(), prog));
        Ok(())
    }

    pub(super) fn attach(
        &mut self,
        desc: &ProgramDesc,
        loaded: &mut HashSet<String>,
        shared: bool,
    ) -> Result<(), RuntimeError> {
        let probe = self.probe_name(desc);
        let attach_err = |reason: String| RuntimeError::Attach {
            probe: probe.clone(),
            reason,
        };
        let load_err = |e: ProgramError| match e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => RuntimeError::Verifier {
                program: desc.name.clone(),
                probe: probe.clone(),
                reason: io_error.to_string(),
                log: verifier_log.to_string(),
            },
            other => attach_err(chain(&other)),
        };
        let wrong_type =
            |want: &str| attach_err(format!("program {} is not a {want} program", desc.name));
        let first = loaded.insert(desc.name.clone());
        let prog = self
            .ebpf
            .program_mut(&desc.name)
            .ok_or_else(|| attach_err(format!("no program {} in the object", desc.name)))?;
        macro_rules! typed {
            ($ty:ty, $what:expr) => {{
                let p: &mut $ty = prog.try_into().map_err(|_| wrong_type($what))?;
                if first {
                    p.load().map_err(load_err)?;
                }
                p
            }};
        }
        match &desc.attach {
            Attach::Tracepoint { category, name } => {
                let p = typed!(TracePoint, "tracepoint");
                p.attach(category, name)
                    .map_err(|e| attach_err(chain(&e)))?;
            }
            Attach::RawTracepoint { name } => {
                let p = typed!(RawTracePoint, "raw tracepoint");
                p.attach(name).map_err(|e| attach_err(chain(&e)))?;
            }
            Attach::Perf {
                period_ns,
                frequency,
                all_cpus,
            } => {
                let p = typed!(PerfEvent, "perf event");
                let policy = match (frequency, period_ns) {
                    (Some(hz), _) => SamplePolicy::Frequency(*hz),
                    (None, Some(ns)) => SamplePolicy::Period(*ns),
                    (None, None) => return Err(attach_err("no frequency or period".into())),
                };
                let online =
                    aya::util::online_cpus().map_err(|(f, e)| attach_err(format!("{f}: {e}")))?;
                let cpus = if *all_cpus {
                    online
                } else {
                    online.into_iter().take(1).collect()
                };
                for cpu in cpus {
                    let config = PerfEventConfig::Software(SoftwareEvent::CpuClock);
                    let scope = PerfEventScope::AllProcessesOneCpu { cpu };
                    p.attach(config, scope, policy, false)
                        .map_err(|e| attach_err(chain(&e)))?;
                }
            }
            Attach::Kprobe {
                function,
                offset,
                ret,
            } => {
                let p = typed!(KProbe, "kprobe");
                if matches!(p.kind(), ProbeKind::Return) != *ret {
                    return Err(attach_err(format!(
                        "program {} has the wrong probe kind",
                        desc.name
                    )));
                }
                p.attach(function, *offset).map_err(|e| {
                    let mut reason = chain(&e);
                    if reason.contains("kprobe/type") {
                        reason.push_str(" (this kernel has no kprobe support)");
                    }
                    attach_err(reason)
                })?;
            }
            Attach::KprobeMulti { .. } => {
                return Err(attach_err(
                    "kprobe_multi programs are loaded by attach_multi".into(),
                ))
            }
            Attach::Pending { .. } => {
                return Err(attach_err(
                    "a pending probe has nothing to attach yet".into(),
                ))
            }
            Attach::Fentry { function, ret } => {
                // fentry/fexit load against the function's BTF id (aya parses kernel BTF
                // for it: only scripts with fbt probes pay for that).
                if self.kernel_btf.is_none() {
                    let btf = aya::Btf::from_sys_fs().map_err(|e| {
                        attach_err(format!("cannot read kernel BTF: {}", chain(&e)))
                    })?;
                    self.kernel_btf = Some(btf);
                }
                let btf = self.kernel_btf.as_ref().unwrap();
                let link = if *ret {
                    let p: &mut FExit = prog.try_into().map_err(|_| wrong_type("fexit"))?;
                    if first {
                        p.load(function, btf).map_err(load_err)?;
                    }
                    p.attach().map(|_| ())
                } else {
                    let p: &mut FEntry = prog.try_into().map_err(|_| wrong_type("fentry"))?;
                    if first {
                        p.load(function, btf).map_err(load_err)?;
                    }
                    p.attach().map(|_| ())
                };
                link.map_err(|e| attach_err(chain(&e)))?;
            }
            Attach::Uprobe {
                path,
                offset,
                ret,
                pid,
                ref_ctr_offset,
            } => {
                let p = typed!(UProbe, "uprobe");
                if matches!(p.kind(), ProbeKind::Return) != *ret {
                    return Err(attach_err(format!(
                        "program {} has the wrong probe kind",
                        desc.name
                    )));
                }
                if let Some(rc) = ref_ctr_offset {
                    let fd = open_uprobe_with_semaphore(p, path, *offset, *ret, *pid, *rc)
                        .map_err(|e| attach_err(format!("{path}: {e}")))?;
                    self.manual.push((desc.name.clone(), fd));
                } else {
                    let scope = match pid.and_then(NonZeroU32::new) {
                        Some(pid) => UProbeScope::OneProcess(pid),
                        None => UProbeScope::AllProcesses,
                    };
                    let at = aya::programs::uprobe::UProbeAttachPoint {
                        location: UProbeAttachLocation::AbsoluteOffset(*offset),
                        // The site index, for a program shared by many sites.
                        cookie: desc.sites.first().map(|&s| s as u64),
                    };
                    let link = p
                        .attach(at, Path::new(path), scope)
                        .map_err(|e| attach_err(chain(&e)))?;
                    if shared {
                        self.uprobe_links
                            .entry(desc.name.clone())
                            .or_default()
                            .push(link);
                    }
                }
            }
            Attach::Trigger { symbol } => {
                // BEGIN and END are raw_tracepoint programs that are never attached: tracer
                // runs them itself with BPF_PROG_TEST_RUN, on this thread and CPU, so they
                // cost no probe registration at start or exit.
                let which = Trigger::from_symbol(symbol).map_err(attach_err)?;
                let p = typed!(RawTracePoint, "raw tracepoint");
                let fd = p.fd().map_err(|e| attach_err(chain(&e)))?;
                let fd = fd
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| attach_err(e.to_string()))?;
                self.triggers.push((which, fd));
                self.end_programs.insert(desc.name.clone());
            }
        }
        Ok(())
    }
}

/// A program tracer loads itself (kprobe_multi, uprobe_multi) that the kernel refused.
fn load_error(e: super::kprobe_multi::Error, program: &str, probe: &str) -> RuntimeError {
    match e {
        super::kprobe_multi::Error::Verifier(reason, log) => RuntimeError::Verifier {
            program: program.to_string(),
            probe: probe.to_string(),
            reason,
            log,
        },
        super::kprobe_multi::Error::Other(reason) => RuntimeError::Attach {
            probe: probe.to_string(),
            reason,
        },
    }
}
