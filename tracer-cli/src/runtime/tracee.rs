//! The `-c` child's waiter: a thread that is the child's ptrace tracer (PTRACE_SEIZE). It holds
//! the child at its exec until the probes are attached, copies the child's mappings at that
//! exec and again at its exit stop, before the kernel tears them down (so that stacks recorded
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

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
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
                    hold(shared);
                }
                ptrace(libc::PTRACE_CONT, pid, 0)
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
