//! The traced process: `-c CMD` (created stopped, released once every probe is attached) or
//! `-p PID` (grabbed), and noticing its exit.

use anyhow::{anyhow, bail, Result};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub use super::tracee::MapsCopy;
use super::tracee::Waiter;

/// How the target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitInfo {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
    /// A grabbed (`-p`) process: not our child, so its status is not ours to read.
    Unknown,
}

#[derive(Debug)]
enum Kind {
    /// Created by `-c`: `go` releases the child, `exec_err` reports a failed exec, and the
    /// waiter holds it at its exec, copies its mappings and reaps it.
    Created {
        go: Option<OwnedFd>,
        exec_err: Option<OwnedFd>,
        cmd: String,
        waiter: Waiter,
    },
    Grabbed,
}

/// A process being traced.
#[derive(Debug)]
pub struct Target {
    pid: u32,
    kind: Kind,
    /// A grabbed process's pidfd, and its exit once noticed.
    pidfd: Option<OwnedFd>,
    watcher: Option<AsyncFd<OwnedFd>>,
    exited: Option<ExitInfo>,
}

/// Split a command line like a simple shell: whitespace, '…', "…" and backslash escapes.
pub fn split_command(cmd: &str) -> Result<Vec<String>> {
    let mut args = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => args.extend(cur.take()),
            '\'' => {
                let s = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => bail!("unterminated ' in command `{cmd}`"),
                    }
                }
            }
            '"' => {
                let s = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => s.push(c),
                        None => bail!("unterminated \" in command `{cmd}`"),
                    }
                }
            }
            '\\' => cur.get_or_insert_with(String::new).extend(chars.next()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    args.extend(cur);
    Ok(args)
}

/// `name` searched in `$PATH` unless it contains a '/'.
fn resolve(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = std::path::PathBuf::from(name);
        return exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| exec(p))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: see above.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub(super) fn decode_status(status: libc::c_int) -> ExitInfo {
    if libc::WIFEXITED(status) {
        ExitInfo::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ExitInfo::Signaled(libc::WTERMSIG(status))
    } else {
        ExitInfo::Unknown
    }
}

/// Note the exit of grabbed process `pid` in `exited`.
fn notice_exit(pid: u32, exited: &mut Option<ExitInfo>) -> Option<ExitInfo> {
    if exited.is_some() {
        return *exited;
    }
    // A zombie has exited too.
    let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    };
    if dead {
        *exited = Some(ExitInfo::Unknown);
    }
    *exited
}

impl Target {
    /// Fork `cmd` (split like a shell command line, run without a shell) so that it waits
    /// before `exec` until [`Target::release`], and is held after it (at its entry point, its
    /// libraries mapped) until [`Target::resume`]. The pid is known at once (for `$target`).
    pub fn spawn_stopped(cmd: &str) -> Result<Target> {
        let argv = split_command(cmd)?;
        let arg0 = argv.first().ok_or_else(|| anyhow!("empty command"))?;
        let path = resolve(arg0)
            .ok_or_else(|| anyhow!("failed to execute {arg0}: No such file or directory"))?;
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())?;
        let cargs = argv
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // SAFETY: the child only makes async-signal-safe calls (close, read, signal,
        // sigprocmask, execv, write, _exit) on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error().into());
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                libc::close(go_w.as_raw_fd());
                libc::close(err_r.as_raw_fd());
                let mut b = 0u8;
                let n = loop {
                    let n = libc::read(go_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                    if !(n < 0 && *libc::__errno_location() == libc::EINTR) {
                        break n;
                    }
                };
                if n != 1 {
                    // Released by nobody: tracer went away before attaching.
                    libc::_exit(127);
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::execv(cpath.as_ptr(), ptrs.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(err_w.as_raw_fd(), (&errno as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        drop((go_r, err_w));
        let pid = pid as u32;
        let waiter = match Waiter::start(pid) {
            Ok(w) => w,
            Err(e) => {
                // Closing `go` makes the child exit by itself: reap it.
                drop(go_w);
                // SAFETY: waiting for our own child; a null status is allowed.
                unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
                return Err(anyhow!("cannot follow the command (pid {pid}): {e}"));
            }
        };
        Ok(Target {
            pid,
            kind: Kind::Created {
                go: Some(go_w),
                exec_err: Some(err_r),
                cmd: arg0.clone(),
                waiter,
            },
            pidfd: None,
            watcher: None,
            exited: None,
        })
    }

    /// `-p PID`: check the process exists.
    pub fn grab(pid: u32) -> Result<Target> {
        // SAFETY: signal 0 only checks for existence and permission.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        let err = io::Error::last_os_error();
        if pid == 0 || (r < 0 && err.raw_os_error() == Some(libc::ESRCH)) {
            bail!("failed to grab pid {pid}: No such process");
        }
        Ok(Target {
            pid,
            kind: Kind::Grabbed,
            pidfd: pidfd_open(pid),
            watcher: None,
            exited: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True for a `-c` process.
    pub fn created(&self) -> bool {
        matches!(self.kind, Kind::Created { .. })
    }

    /// Let a `-c` process `exec` (a no-op for `-p`), and wait until it is held at its entry
    /// point (see `tracee`). Fails if `exec` failed.
    pub fn release(&mut self) -> Result<()> {
        let Kind::Created {
            go,
            exec_err,
            cmd,
            waiter,
        } = &mut self.kind
        else {
            return Ok(());
        };
        let Some(go) = go.take() else { return Ok(()) };
        // SAFETY: writing one byte from a local to an fd we own.
        let n = unsafe { libc::write(go.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if n != 1 {
            let err = io::Error::last_os_error();
            // Killed before it was released (EPIPE): wait() reports how it ended.
            if err.raw_os_error() == Some(libc::EPIPE) {
                return Ok(());
            }
            bail!("failed to release {cmd}: {err}");
        }
        drop(go);
        if let Some(err) = exec_err.take() {
            let mut errno = [0u8; 4];
            // SAFETY: reading into a local buffer from an fd we own; returns 0 at exec (CLOEXEC).
            let n = unsafe { libc::read(err.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
            if n == 4 {
                let e = io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
                bail!("failed to execute {cmd}: {e}");
            }
        }
        waiter.wait_held();
        Ok(())
    }

    /// Why a `-c` process runs without being held at its exec (it could not be traced).
    pub fn unheld_reason(&self) -> Option<&io::Error> {
        match &self.kind {
            Kind::Created { waiter, .. } => waiter.untraced.as_ref(),
            Kind::Grabbed => None,
        }
    }

    /// The mappings of a `-c` process, copied while it was stopped at its exec or its exit.
    pub fn maps_copy(&self) -> Option<MapsCopy> {
        match &self.kind {
            Kind::Created { waiter, .. } => Some(waiter.maps()),
            Kind::Grabbed => None,
        }
    }

    /// For a `-c` process: which of its SIGSTOP stops are the dlopen stopper's.
    pub fn set_stop_check(&self, check: super::tracee::StopCheck) {
        if let Kind::Created { waiter, .. } = &self.kind {
            waiter.set_stop_check(check);
        }
    }

    /// Let a `-c` process run on from its hold after exec (see `release`).
    pub fn resume(&mut self) -> Result<()> {
        if let Kind::Created { waiter, .. } = &self.kind {
            waiter.let_run();
        }
        Ok(())
    }

    /// The exit of a process that has exited (a created child is reaped by its waiter).
    fn try_reap(&mut self) -> Option<ExitInfo> {
        match &self.kind {
            Kind::Created { waiter, .. } => waiter.exit(),
            Kind::Grabbed => notice_exit(self.pid, &mut self.exited),
        }
    }

    /// Wait until the process exits (a created child: its waiter; a grabbed one: pidfd
    /// readiness, else polling every 100 ms). Cancel-safe; returns at once if it already exited.
    pub async fn wait(&mut self) -> Result<ExitInfo> {
        if let Kind::Created { waiter, .. } = &self.kind {
            return Ok(waiter.wait().await);
        }
        loop {
            if let Some(info) = self.try_reap() {
                return Ok(info);
            }
            if self.watcher.is_none() {
                if let Some(fd) = self.pidfd.take() {
                    // SAFETY: the pidfd is owned by the AsyncFd for its whole life.
                    let w = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                        .map_err(io::Error::from)?;
                    self.watcher = Some(w);
                }
            }
            match &self.watcher {
                Some(w) => {
                    let mut g = w.readable().await?;
                    if notice_exit(self.pid, &mut self.exited).is_none() {
                        g.clear_ready();
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// SIGKILL a created process that is still running and reap it.
    pub fn kill(&mut self) {
        if let Kind::Created { waiter, .. } = &mut self.kind {
            if waiter.exit().is_none() {
                // SAFETY: signalling our own child, not yet reaped (its waiter reaps it).
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
            }
            waiter.join();
        }
    }
}

impl Drop for Target {
    /// A process tracer created does not outlive it (as in DTrace); a grabbed one is left alone.
    fn drop(&mut self) {
        if let Kind::Created { go, .. } = &mut self.kind {
            // Never released: closing the pipe makes the child exit by itself.
            drop(go.take());
        }
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        let v = split_command(r#"ls -l 'a b' "c \"d\"" e\ f"#).unwrap();
        assert_eq!(v, ["ls", "-l", "a b", "c \"d\"", "e f"]);
        assert!(split_command("echo 'x").is_err());
    }

    #[test]
    fn grab_missing_pid() {
        let e = Target::grab(0x3fff_fff0).unwrap_err().to_string();
        assert_eq!(e, "failed to grab pid 1073741808: No such process");
        assert!(Target::grab(std::process::id()).is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn created_process_waits_for_release() {
        let dir = std::env::temp_dir().join(format!("tracer-target-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let mut t = Target::spawn_stopped(&format!("/bin/sh -c 'touch {}; exit 3'", dir.display()))
            .unwrap();
        assert!(t.pid() > 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!dir.exists(), "the command ran before release");
        t.release().unwrap();
        t.resume().unwrap();
        let info = tokio::time::timeout(Duration::from_secs(10), t.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info, ExitInfo::Exited(3));
        assert!(dir.exists());
        let _ = std::fs::remove_file(&dir);

        let e = Target::spawn_stopped("no-such-command-xyz")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "failed to execute no-such-command-xyz: No such file or directory"
        );
        // Exec failure of a file that has the x bit but is no program (ENOEXEC) is reported
        // at release. The test makes that file: no system file is reliably like that.
        use std::os::unix::fs::PermissionsExt;
        let bogus = std::env::temp_dir().join(format!("tracer-noexec-{}", std::process::id()));
        std::fs::write(&bogus, b"\x01\x02 not a program\n").unwrap();
        std::fs::set_permissions(&bogus, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut t = Target::spawn_stopped(&bogus.to_string_lossy()).unwrap();
        let e = t.release().unwrap_err().to_string();
        let _ = std::fs::remove_file(&bogus);
        assert!(e.starts_with("failed to execute"), "{e}");
    }

    fn state_of(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
        rest.chars().next().unwrap_or('?')
    }

    /// Held at its entry point (in a ptrace stop) until resume, once the dynamic loader
    /// mapped libc (DTrace's post-init point), and the mappings are copied there and at the
    /// exit stop, so stacks recorded just before exit symbolize.
    #[tokio::test(flavor = "current_thread")]
    async fn created_process_is_held_after_its_libraries_are_mapped() {
        let mut t = Target::spawn_stopped("/bin/sh -c 'exit 4'").unwrap();
        assert!(t.unheld_reason().is_none(), "{:?}", t.unheld_reason());
        t.release().unwrap();
        let copy = t.maps_copy().unwrap();
        let at_exec = copy.lock().unwrap().clone().unwrap_or_default();
        // /bin/sh is a link (to dash, or to a VM's busybox): the mappings name its target.
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        let sh = sh.to_string_lossy();
        assert!(at_exec.contains(&*sh), "{sh}:\n{at_exec}");
        // A dynamically linked shell (a VM's busybox is static) has libc mapped already.
        if at_exec.contains("/ld-") {
            assert!(at_exec.contains("libc.so"), "{at_exec}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(state_of(t.pid()), 't', "not held in a ptrace stop");
        t.resume().unwrap();
        let info = tokio::time::timeout(Duration::from_secs(10), t.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info, ExitInfo::Exited(4));
        let at_exit = copy.lock().unwrap().clone().unwrap_or_default();
        assert!(at_exit.contains(&*sh), "{sh}:\n{at_exit}");
        // A dynamically linked shell (a VM's busybox is static) maps libc after exec.
        if at_exec.contains("/ld-") {
            assert!(at_exit.contains("libc.so"), "{at_exit}");
        }
    }

    /// Signals reach the held-then-running child as they would without ptrace: job control
    /// stops and continues it, and a fatal signal kills it (and is its reported end).
    #[tokio::test(flavor = "current_thread")]
    async fn signals_reach_a_created_process() {
        let mut t = Target::spawn_stopped("sleep 30").unwrap();
        t.release().unwrap();
        t.resume().unwrap();
        let pid = t.pid() as libc::pid_t;
        let settle = |want: char| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while state_of(pid as u32) != want && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            state_of(pid as u32)
        };
        assert_eq!(settle('S'), 'S');
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        // Stopped as a plain process (not in a ptrace stop), so a debugger can attach.
        assert_eq!(settle('T'), 'T', "SIGSTOP did not stop it");
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        assert_eq!(settle('S'), 'S', "SIGCONT did not wake it");
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let info = tokio::time::timeout(Duration::from_secs(10), t.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info, ExitInfo::Signaled(libc::SIGTERM));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn grabbed_process_exit_is_noticed() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let mut t = Target::grab(child.id()).unwrap();
        let reaper = std::thread::spawn(move || child.wait());
        let info = tokio::time::timeout(Duration::from_secs(10), t.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info, ExitInfo::Unknown);
        reaper.join().unwrap().unwrap();
    }
}
