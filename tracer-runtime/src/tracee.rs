//! The `-c` child's waiter: a thread that is the child's ptrace tracer (PTRACE_SEIZE). It holds
//! the child at its entry point (AT_ENTRY, once ld.so mapped the libraries it needs, so their
//! probes resolve; a static program at its exec) until the probes are attached, copies the
//! child's mappings there and again at its exit stop, before the kernel tears them down (so that stacks recorded
//! just before the exit still symbolize), delivers every signal on, and reaps the child. It
//! lets go of a child that stops (job control or D's `stop()`), so a debugger can attach.
//!
//! ptrace requests must come from the thread that seized, hence one thread owns them all.
//! Without ptrace (a seccomp policy, Yama's scope 3) the thread only reaps, and nothing holds.

use super::target::{decode_status, ExitInfo};
use std::io;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The newest copy of the child's /proc/PID/maps taken while it was stopped (at exec or exit).
pub type MapsCopy = Arc<Mutex<Option<String>>>;

#[derive(Default)]
struct State {
    /// Stopped right after its first exec, waiting for `let_run`.
    held: bool,
    /// The owner let it run (or gave up on it): a later hold is skipped.
    run: bool,
    exit: Option<ExitInfo>,
}

/// Tells the waiter whether a SIGSTOP group-stop is the dlopen stopper's (see `pending`).
pub type StopCheck = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    stop_check: Mutex<Option<StopCheck>>,
    changed: Condvar,
    exited: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
pub struct Waiter {
    shared: Arc<Shared>,
    maps: MapsCopy,
    /// Why the child could not be traced, if it could not: then nothing holds it.
    pub untraced: Option<io::Error>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Waiter {
    /// Start following `pid`, our child, which must not have exec'd yet.
    pub fn start(pid: u32) -> io::Result<Waiter> {
        let shared = Arc::new(Shared::default());
        let maps = MapsCopy::default();
        let (seized_tx, seized_rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("tracer-target".into())
            .spawn({
                let (shared, maps) = (shared.clone(), maps.clone());
                move || follow(pid as libc::pid_t, &shared, &maps, seized_tx)
            })?;
        let untraced = seized_rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the target's waiter thread ended")))
            .err();
        Ok(Waiter {
            shared,
            maps,
            untraced,
            thread: Some(thread),
        })
    }

    pub fn maps(&self) -> MapsCopy {
        self.maps.clone()
    }

    /// Block until the child is held at its exec or has ended. Only a traced child is held:
    /// an untraced one returns at once.
    pub fn wait_held(&self) {
        if self.untraced.is_some() {
            return;
        }
        let mut st = self.shared.lock();
        while !st.held && !st.run && st.exit.is_none() {
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Let a held child go on (now, or at once when its exec comes).
    pub fn let_run(&self) {
        self.shared.lock().run = true;
        self.shared.changed.notify_all();
    }

    /// From now on, keep the stops `check` says are the dlopen stopper's: the runtime ends
    /// them with SIGCONT.
    pub fn set_stop_check(&self, check: StopCheck) {
        *self
            .shared
            .stop_check
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(check);
    }

    pub fn exit(&self) -> Option<ExitInfo> {
        self.shared.lock().exit
    }

    /// Cancel-safe: returns at once if it ended already.
    pub async fn wait(&self) -> ExitInfo {
        loop {
            if let Some(info) = self.exit() {
                return info;
            }
            self.shared.exited.notified().await;
        }
    }

    /// Block until the child has ended and the thread is done.
    pub fn join(&mut self) -> ExitInfo {
        self.let_run();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.exit().unwrap_or(ExitInfo::Unknown)
    }
}

/// The waiter thread's body.
fn follow(
    pid: libc::pid_t,
    shared: &Shared,
    maps: &MapsCopy,
    seized: mpsc::SyncSender<io::Result<()>>,
) {
    let options = libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL;
    let traced = ptrace(libc::PTRACE_SEIZE, pid, options as usize);
    let _ = seized.send(traced);
    drop(seized);
    let mut first_exec = true;
    let mut entry: Option<EntryStop> = None;
    let exit = loop {
        let mut status = 0;
        // SAFETY: waiting for our own child; `status` is a local.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break ExitInfo::Unknown;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            break decode_status(status);
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let signal = libc::WSTOPSIG(status);
        // A ptrace event stop has SIGTRAP as its signal and the event in bits 16..24. A failed
        // restart (ESRCH: killed meanwhile) needs nothing: waitpid reports how it ended.
        let _ = match status >> 16 {
            libc::PTRACE_EVENT_EXEC => {
                copy_maps(pid, maps);
                if std::mem::take(&mut first_exec) {
                    // Held at the program's entry, once ld.so mapped what it needs; a
                    // static program (or one whose entry cannot be patched) right here.
                    entry = EntryStop::plant(pid);
                    if entry.is_none() {
                        hold(shared);
                    }
                } else if entry.take().is_some() {
                    // A new image before the first one reached its entry: the breakpoint went
                    // with the old image, and the owner waits no more.
                    hold_released(shared);
                }
                ptrace(libc::PTRACE_CONT, pid, 0)
            }
            0 if signal == libc::SIGTRAP && entry.as_ref().is_some_and(|e| e.reached(pid)) => {
                let stop = entry.take();
                // The program's code and pc as they were: then nothing shows it stopped.
                if stop.is_some_and(|e| e.remove(pid).is_ok()) {
                    copy_maps(pid, maps);
                    hold(shared);
                    ptrace(libc::PTRACE_CONT, pid, 0)
                } else {
                    // Cannot undo the breakpoint: the program cannot go on correctly.
                    ptrace(libc::PTRACE_CONT, pid, libc::SIGKILL as usize)
                }
            }
            libc::PTRACE_EVENT_EXIT => {
                copy_maps(pid, maps);
                ptrace(libc::PTRACE_CONT, pid, 0)
            }
            // Group-stop (job control, or D's stop()): let go of it. It stays stopped as a
            // plain 'T' process that a debugger can attach to, which is what stop() is for.
            // The exit copy is lost then; the runtime's periodic copies remain.
            libc::PTRACE_EVENT_STOP
                if matches!(
                    signal,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) =>
            {
                let check = shared
                    .stop_check
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if signal == libc::SIGSTOP && check.is_some_and(|ours| ours()) {
                    // Stopped at r_brk while new probes are attached: stay stopped until the
                    // runtime's SIGCONT, and stay traced.
                    let _ = ptrace(libc::PTRACE_LISTEN, pid, 0);
                    continue;
                }
                // Not before the breakpoint is gone: a trap without a tracer kills.
                if let Some(e) = entry.take() {
                    let _ = e.restore_code(pid);
                    hold_released(shared);
                }
                ptrace(libc::PTRACE_DETACH, pid, 0)
            }
            // A signal on its way to the child: deliver it.
            0 => ptrace(libc::PTRACE_CONT, pid, signal as usize),
            _ => ptrace(libc::PTRACE_CONT, pid, 0),
        };
    };
    shared.lock().exit = Some(exit);
    shared.changed.notify_all();
    shared.exited.notify_one();
}

/// Stay stopped at the exec until the owner lets the child run.
fn hold(shared: &Shared) {
    let mut st = shared.lock();
    st.held = true;
    shared.changed.notify_all();
    while !st.run {
        st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    st.held = false;
}

/// Give up holding (the child left our control before its hold point): the owner waits no more.
fn hold_released(shared: &Shared) {
    shared.lock().run = true;
    shared.changed.notify_all();
}

/// A breakpoint at the program's entry point (AT_ENTRY), DTrace's post-init point: ld.so has
/// mapped and initialized the libraries the program needs, and none of the program's own code
/// has run. Only the main thread exists before the entry, so only a traced thread can hit it.
struct EntryStop {
    addr: u64,
    /// The word at `addr` before the breakpoint went in.
    saved: u64,
}

#[cfg(target_arch = "x86_64")]
mod arch {
    /// int3, in the word's first byte (little-endian).
    pub fn patch(word: u64) -> u64 {
        (word & !0xff) | 0xcc
    }
    /// The pc after the trap: past the int3.
    pub const PC_AFTER: u64 = 1;
    pub fn pc(r: &libc::user_regs_struct) -> u64 {
        r.rip
    }
    pub fn set_pc(r: &mut libc::user_regs_struct, pc: u64) {
        r.rip = pc
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    /// brk #0, in the word's first four bytes (little-endian).
    pub fn patch(word: u64) -> u64 {
        (word & !0xffff_ffff) | 0xd420_0000
    }
    /// The pc after the trap: at the brk.
    pub const PC_AFTER: u64 = 0;
    pub fn pc(r: &libc::user_regs_struct) -> u64 {
        r.pc
    }
    pub fn set_pc(r: &mut libc::user_regs_struct, pc: u64) {
        r.pc = pc
    }
}

impl EntryStop {
    /// Put the breakpoint in, if the program has an interpreter and its entry can be patched.
    fn plant(pid: libc::pid_t) -> Option<EntryStop> {
        let (addr, base) = super::rtld::entry_and_base(pid as u32).ok()?;
        if base == 0 || addr == 0 {
            return None;
        }
        let saved = peek(pid, addr).ok()?;
        poke(pid, addr, arch::patch(saved)).ok()?;
        Some(EntryStop { addr, saved })
    }

    /// True when this SIGTRAP is the breakpoint's.
    fn reached(&self, pid: libc::pid_t) -> bool {
        get_regs(pid).is_ok_and(|r| arch::pc(&r) == self.addr + arch::PC_AFTER)
    }

    /// The original code back, and the pc back on it.
    fn remove(self, pid: libc::pid_t) -> std::io::Result<()> {
        self.restore_code(pid)?;
        let mut r = get_regs(pid)?;
        arch::set_pc(&mut r, self.addr);
        set_regs(pid, &r)
    }

    fn restore_code(&self, pid: libc::pid_t) -> std::io::Result<()> {
        poke(pid, self.addr, self.saved)
    }
}

fn peek(pid: libc::pid_t, addr: u64) -> io::Result<u64> {
    // PEEKDATA returns the word; errno tells a word of -1 from an error.
    // SAFETY: a request on our own stopped tracee; no pointers are passed.
    unsafe {
        *libc::__errno_location() = 0;
        let w = libc::ptrace(
            libc::PTRACE_PEEKDATA,
            pid,
            addr as *mut libc::c_void,
            std::ptr::null_mut::<libc::c_void>(),
        );
        if w == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(w as u64)
    }
}

fn poke(pid: libc::pid_t, addr: u64, word: u64) -> io::Result<()> {
    // SAFETY: a request on our own stopped tracee; `word` is passed by value.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_POKEDATA,
            pid,
            addr as *mut libc::c_void,
            word as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

const NT_PRSTATUS: usize = 1;

fn get_regs(pid: libc::pid_t) -> io::Result<libc::user_regs_struct> {
    // SAFETY: all-zero is a valid user_regs_struct (plain integers).
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    regset(libc::PTRACE_GETREGSET, pid, &mut regs)?;
    Ok(regs)
}

fn set_regs(pid: libc::pid_t, regs: &libc::user_regs_struct) -> io::Result<()> {
    let mut copy = *regs;
    regset(libc::PTRACE_SETREGSET, pid, &mut copy)
}

fn regset(request: Request, pid: libc::pid_t, regs: &mut libc::user_regs_struct) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: (regs as *mut libc::user_regs_struct).cast(),
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    // SAFETY: `iov` points at a local register block of the size it says, alive for the call.
    let r = unsafe {
        libc::ptrace(
            request,
            pid,
            NT_PRSTATUS as *mut libc::c_void,
            (&mut iov as *mut libc::iovec).cast::<libc::c_void>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn copy_maps(pid: libc::pid_t, maps: &MapsCopy) {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        if !text.is_empty() {
            *maps.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        }
    }
}

/// The type of ptrace's request argument in the libc the binary links.
#[cfg(target_env = "musl")]
type Request = libc::c_int;
#[cfg(not(target_env = "musl"))]
type Request = libc::c_uint;

fn ptrace(request: Request, pid: libc::pid_t, data: usize) -> io::Result<()> {
    // SAFETY: requests on our own tracee that take no address and an integer `data`.
    let r = unsafe {
        libc::ptrace(
            request,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            data as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
