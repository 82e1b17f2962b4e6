//! Probes of libraries the target maps later (dlopen): the pending `-Z` descriptions are
//! matched again each time the dynamic linker reports a change, and their new probes are
//! attached before the library's code runs.
//!
//! How the target is stopped: a uprobe on the dynamic linker's `r_brk` (the function ld.so
//! calls before and after every change to its list of objects) runs a tiny program that, when
//! `_r_debug.r_state` says the list is consistent again (the library mapped and relocated,
//! its constructors not yet run), sends the thread SIGSTOP and then counts the stop
//! (`bpf_send_signal_thread`): the signal is taken before the thread returns to user space,
//! so the whole process stops right there, whatever thread called dlopen() and whether or
//! not it is ptraced. The runtime sees the count move, compiles and attaches the new probes,
//! and sends SIGCONT. A `-c` child's waiter keeps such a stop (PTRACE_LISTEN) instead of
//! letting go of the child, see `tracee`.
//!
//! Cost: one uprobe hit per dlopen()/dlclose() (two r_brk calls), and for each a stop of the
//! process for as long as matching and compiling take (a few ms when nothing new matches).

use super::attach::open_uprobe;
use super::kprobe_multi::{self, bpf};
use super::rtld;
use super::session::{RuntimeError, Session};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracer_common::{Attach, CompiledScript};

/// The caller's side: match the pending descriptions again.
pub trait LateProbes {
    /// The script compiled again with the probes found since the last call, or None when
    /// nothing new matched. Errors go to `notice` (worded to name the description) and
    /// leave the rest running.
    fn refresh(&mut self, notice: &mut dyn FnMut(&str)) -> Option<CompiledScript>;

    /// The descriptions of the target that are pending (none: nothing watches dlopen()).
    fn pending(&self) -> Vec<String>;
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// The r_brk stopper of one process.
pub struct Watch {
    pid: u32,
    /// One u64: how many times the stopper stopped the process.
    counter: Arc<OwnedFd>,
    /// Hits already handled by the runtime.
    handled: std::cell::Cell<u64>,
    /// Hits the `-c` waiter has already taken for ours (see `stop_check`).
    seen_by_waiter: Arc<AtomicU64>,
    _prog: OwnedFd,
    link: Option<OwnedFd>,
}

impl Drop for Watch {
    /// Detach the stopper, then end a stop it made that the runtime did not handle (the run
    /// ended meanwhile): a grabbed process must not stay stopped.
    fn drop(&mut self) {
        drop(self.link.take());
        if self.take_hit() {
            self.resume();
        }
        WATCHED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != self.pid);
    }
}

/// Processes a stopper watches: if tracer panics (the release build aborts, and no Drop
/// runs), the panic hook lets any of them that is stopped go on.
static WATCHED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn watch_for_panics(pid: u32) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let pids = WATCHED.lock().map(|w| w.clone()).unwrap_or_default();
            for pid in pids {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // The state follows the command name, which ends at the last ')'.
                let stopped = stat
                    .rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'));
                if stopped {
                    // SAFETY: kill(2) with a pid and a signal number.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
                }
            }
            previous(info);
        }));
    });
    WATCHED.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | dst;
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

/// The stopper's instructions: see the module documentation.
fn stopper(r_state: u64, map_fd: i32) -> Vec<u8> {
    const R10: u8 = 10;
    let ld64 = |dst: u8, src: u8, v: u64| {
        let mut b = insn(0x18, dst, src, 0, v as u32 as i32).to_vec();
        b.extend(insn(0, 0, 0, 0, (v >> 32) as u32 as i32));
        b
    };
    let mut p = Vec::new();
    // bpf_probe_read_user(r10 - 8, 4, &_r_debug.r_state)
    p.extend(insn(0xbf, 1, R10, 0, 0));
    p.extend(insn(0x07, 1, 0, 0, -8));
    p.extend(insn(0xb7, 2, 0, 0, 4));
    p.extend(ld64(3, 0, r_state));
    p.extend(insn(0x85, 0, 0, 0, 112));
    // Unreadable: stop anyway (a stop too many costs little, one too few loses probes).
    p.extend(insn(0x55, 0, 0, 2, 0));
    p.extend(insn(0x61, 1, R10, -8, 0));
    // Only RT_CONSISTENT (0): before a change nothing new is mapped yet.
    p.extend(insn(0x55, 1, 0, 13, 0));
    // r6 = &counter[0]; no counter, no stop (nobody would end it).
    p.extend(insn(0x62, R10, 0, -16, 0));
    p.extend(ld64(1, 1, map_fd as u32 as u64));
    p.extend(insn(0xbf, 2, R10, 0, 0));
    p.extend(insn(0x07, 2, 0, 0, -16));
    p.extend(insn(0x85, 0, 0, 0, 1));
    p.extend(insn(0x15, 0, 0, 6, 0));
    p.extend(insn(0xbf, 6, 0, 0, 0));
    // bpf_send_signal_thread(SIGSTOP), then count only a stop that was sent: the runtime's
    // SIGCONT must come after the SIGSTOP is queued (it then ends the stop, or discards the
    // pending signal), never before it.
    p.extend(insn(0xb7, 1, 0, 0, libc::SIGSTOP));
    p.extend(insn(0x85, 0, 0, 0, 117));
    p.extend(insn(0x55, 0, 0, 2, 0));
    p.extend(insn(0xb7, 1, 0, 0, 1));
    p.extend(insn(0xdb, 6, 1, 0, 0));
    p.extend(insn(0xb7, 0, 0, 0, 0));
    p.extend(insn(0x95, 0, 0, 0, 0));
    p
}

fn read_counter(fd: &OwnedFd) -> u64 {
    let key = 0u32;
    let mut value = 0u64;
    let mut attr = [0u8; 32];
    attr[0..4].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(&key as *const u32 as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(&mut value as *mut u64 as u64).to_ne_bytes());
    if bpf(BPF_MAP_LOOKUP_ELEM, &attr) < 0 {
        return 0;
    }
    value
}

impl Watch {
    /// Put the stopper on process `pid`'s r_brk. Fails (with the reason) for a static
    /// program, a dynamic linker that is not glibc's, or a kernel that refuses the program.
    pub fn start(pid: u32) -> Result<Watch, String> {
        let rtld = rtld::find_running(pid)?;
        let mut attr = [0u8; 72];
        attr[0..4].copy_from_slice(&BPF_MAP_TYPE_ARRAY.to_ne_bytes());
        attr[4..8].copy_from_slice(&4u32.to_ne_bytes());
        attr[8..12].copy_from_slice(&8u32.to_ne_bytes());
        attr[12..16].copy_from_slice(&1u32.to_ne_bytes());
        let fd = bpf(BPF_MAP_CREATE, &attr);
        if fd < 0 {
            return Err(format!(
                "creating the dlopen counter: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a new descriptor the kernel gave us.
        let counter = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let insns = stopper(rtld.r_debug + rtld::R_STATE_OFFSET, counter.as_raw_fd());
        let prog = kprobe_multi::load_as(&insns, "tracer_rbrk", 0).map_err(|e| match e {
            kprobe_multi::Error::Verifier(m, log) => format!("the dlopen stopper: {m}: {log}"),
            kprobe_multi::Error::Other(m) => format!("the dlopen stopper: {m}"),
        })?;
        let path = rtld.path.to_string_lossy().into_owned();
        let link = open_uprobe(
            prog.as_raw_fd(),
            &path,
            rtld.brk_offset,
            false,
            Some(pid),
            0,
        )
        .map_err(|e| format!("a uprobe on r_brk ({path}+{:#x}): {e}", rtld.brk_offset))?;
        watch_for_panics(pid);
        Ok(Watch {
            pid,
            counter: Arc::new(counter),
            handled: Default::default(),
            seen_by_waiter: Arc::default(),
            _prog: prog,
            link: Some(link),
        })
    }

    /// True once per stop of the stopper that the runtime has not handled.
    pub fn take_hit(&self) -> bool {
        let n = read_counter(&self.counter);
        if n > self.handled.get() {
            self.handled.set(n);
            true
        } else {
            false
        }
    }

    /// Let the process go on after a stop (every thread: the stop was process-wide).
    pub fn resume(&self) {
        // SAFETY: plain kill(2) on the traced process.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGCONT) };
    }

    /// For the `-c` waiter: is this SIGSTOP group-stop the stopper's (then it is kept for the
    /// runtime to end) rather than someone else's?
    pub fn stop_check(&self) -> super::tracee::StopCheck {
        let counter = self.counter.clone();
        let seen = self.seen_by_waiter.clone();
        Arc::new(move || {
            let n = read_counter(&counter);
            seen.fetch_max(n, Ordering::SeqCst) < n
        })
    }
}

/// Load a late program (instructions relocated against the session's maps) and attach it at
/// its one uprobe site. Returns the descriptors that keep it attached.
fn attach_late(
    insns: &[u8],
    name: &str,
    attach: &Attach,
    cookie: u64,
) -> Result<(OwnedFd, OwnedFd), String> {
    let Attach::Uprobe {
        path,
        offset,
        ret,
        pid,
        ref_ctr_offset,
    } = attach
    else {
        return Err(format!("only uprobes are found late, not {attach:?}"));
    };
    let loaded = |attach_type| {
        kprobe_multi::load_as(insns, name, attach_type).map_err(|e| match e {
            kprobe_multi::Error::Verifier(m, log) => {
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                format!(
                    "the verifier rejected the program: {m}: {}",
                    tail.join(" | ")
                )
            }
            kprobe_multi::Error::Other(m) => m,
        })
    };
    if ref_ctr_offset.is_none() && super::uprobe_multi::available() {
        let prog = loaded(super::uprobe_multi::BPF_TRACE_UPROBE_MULTI)?;
        let link = super::uprobe_multi::attach(&prog, path, &[*offset], &[cookie], *ret, *pid)?;
        return Ok((link, prog));
    }
    let prog = loaded(0)?;
    let link = open_uprobe(
        prog.as_raw_fd(),
        path,
        *offset,
        *ret,
        *pid,
        ref_ctr_offset.unwrap_or(0),
    )
    .map_err(|e| format!("{path}: {e}"))?;
    Ok((link, prog))
}

impl Session {
    /// Take `new`, the script compiled again with late probes (see [`LateProbes`]): attach
    /// its programs that are not running yet, and decode with its tables from now on. The
    /// running programs keep their clause and aggregation numbers (late programs are
    /// lowered last), which is checked first.
    pub fn add_late(&mut self, new: CompiledScript) -> Result<(), RuntimeError> {
        let old = &self.script;
        let object = |reason: String| RuntimeError::Object { reason };
        let same_clause = |i: usize| {
            let name = |s: &CompiledScript| {
                s.clauses
                    .get(i)
                    .and_then(|c| s.probes.get(c.probe as usize))
                    .map(|p| p.full_name())
            };
            name(old) == name(&new)
        };
        if new.clauses.len() < old.clauses.len()
            || !(0..old.clauses.len()).all(same_clause)
            || new.aggs.get(..old.aggs.len()) != Some(&old.aggs[..])
        {
            return Err(object(
                "the script compiled with the new library's probes numbers its clauses differently"
                    .into(),
            ));
        }
        let running: std::collections::HashSet<&str> =
            old.programs.iter().map(|p| p.name.as_str()).collect();
        let fresh: Vec<tracer_common::ProgramDesc> = new
            .programs
            .iter()
            .filter(|p| !running.contains(p.name.as_str()))
            .filter(|p| !matches!(p.attach, Attach::Pending { .. }))
            .cloned()
            .collect();
        let mut attached = Vec::new();
        let mut first_err = None;
        for desc in &fresh {
            let probe = new
                .probes
                .get(desc.probe as usize)
                .map_or_else(|| desc.name.clone(), |p| p.full_name());
            let result = kprobe_multi::instructions(&new.elf, &desc.name, |m| match m {
                tracer_common::MapNames::EVENTS => self.events_fd.as_ref().map(|fd| fd.as_raw_fd()),
                _ => self.raw_map(m).ok().map(|r| r.fd.as_raw_fd()),
            })
            .and_then(|insns| attach_late(&insns, &desc.name, &desc.attach, desc.probe as u64));
            match result {
                Ok(fds) => attached.push((desc.name.clone(), fds)),
                Err(reason) => {
                    first_err.get_or_insert(RuntimeError::Attach { probe, reason });
                }
            }
        }
        for (name, (link, prog)) in attached {
            self.manual.push((name.clone(), link));
            self.own_programs.push((name, prog));
        }
        self.script = CompiledScript {
            elf: Vec::new(),
            ..new
        };
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
