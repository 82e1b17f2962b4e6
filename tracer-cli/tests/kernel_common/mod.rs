//! Shared helpers of the `kernel_*` integration tests: they run the real `tracer` binary
//! against the running kernel (as root) and compare what it prints with the truth.
//!
//! - [`target`] builds a C program of `tests/targets/` once per test process;
//! - [`run`] runs tracer to completion with a bounded wait; [`Running`] is a tracer still
//!   running, whose output can be awaited line by line; both kill tracer's whole process
//!   group on failure;
//! - [`bpf`] enumerates loaded eBPF programs through the `bpf(2)` system call.

use std::collections::HashMap;

/// Whether tracer's stderr reports lost firings (its own drops, or firings the kernel
/// skipped): such a run cannot show exact counts.
pub fn reported_loss(stderr: &str) -> bool {
    stderr.contains("skipped by the kernel") || stderr.contains("drop")
}
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The default bound on a whole tracer run.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

pub fn tracer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tracer")
}

fn targets_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/targets")
}

/// A scratch directory private to this test process.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("kernel-itests-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// A fresh path in the scratch directory (not created).
pub fn scratch_file(name: &str) -> PathBuf {
    static N: Mutex<u32> = Mutex::new(0);
    let mut n = N.lock().unwrap();
    *n += 1;
    scratch().join(format!("{n}-{name}"))
}

/// The absolute path of `tests/targets/NAME.c`, compiled (once per test process) with
/// `cc -O0 -g -fno-omit-frame-pointer -pthread`.
pub fn target(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let map = built.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(name) {
        return p.clone();
    }
    let src = targets_src().join(format!("{name}.c"));
    let out = scratch().join(name);
    let r = Command::new("cc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("cannot run cc");
    assert!(
        r.status.success(),
        "cc {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    map.insert(name.to_string(), out.clone());
    out
}

/// What a finished tracer run left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code; panics (showing the output) when tracer died of a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("tracer died of signal {:?}\n{self}", self.status.signal()))
    }

    /// Assert a zero exit status.
    pub fn ok(self) -> Output {
        assert_eq!(self.status.code(), Some(0), "tracer failed\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.status, self.stdout, self.stderr
        )
    }
}

/// One output stream collected by a thread, with a condition variable for waiters.
#[derive(Default)]
struct Stream {
    data: Mutex<(Vec<u8>, bool)>,
    changed: Condvar,
}

impl Stream {
    fn collect(self: &Arc<Self>, mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                let mut g = me.data.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    me.changed.notify_all();
                    return;
                }
                g.0.extend_from_slice(&buf[..n]);
                me.changed.notify_all();
            }
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data.lock().unwrap().0).into_owned()
    }

    /// Wait until `pred(text so far)` holds (true) or the stream ends or time runs out (false).
    fn wait_for(&self, timeout: Duration, pred: &dyn Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.data.lock().unwrap();
        loop {
            if pred(&String::from_utf8_lossy(&g.0)) {
                return true;
            }
            let now = Instant::now();
            if g.1 || now >= deadline {
                return false;
            }
            g = self.changed.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

/// A tracer process (in its own process group) with its output collected in the background.
/// Dropping it kills the whole group.
pub struct Running {
    child: Option<Child>,
    pub stdin: Option<ChildStdin>,
    out: Arc<Stream>,
    err: Arc<Stream>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How tracer's standard input is set up.
pub enum In {
    Null,
    Piped,
}

pub fn spawn(args: &[&str]) -> Running {
    spawn_with(args, In::Null)
}

pub fn spawn_with(args: &[&str], stdin: In) -> Running {
    let mut cmd = Command::new(tracer_bin());
    cmd.args(args)
        .current_dir(scratch())
        .stdin(match stdin {
            In::Null => Stdio::null(),
            In::Piped => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("cannot start tracer");
    let out = Arc::new(Stream::default());
    let err = Arc::new(Stream::default());
    let readers = vec![
        out.collect(child.stdout.take().unwrap()),
        err.collect(child.stderr.take().unwrap()),
    ];
    let stdin = child.stdin.take();
    Running {
        child: Some(child),
        stdin,
        out,
        err,
        readers,
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stdout(&self) -> String {
        self.out.text()
    }

    pub fn stderr(&self) -> String {
        self.err.text()
    }

    /// Wait until stdout satisfies `pred`; panics (killing tracer) after `timeout`.
    pub fn wait_stdout(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) {
        if !self.out.wait_for(timeout, &pred) {
            panic!(
                "tracer never printed {what} (waited {timeout:?})\n--- stdout\n{}--- stderr\n{}",
                self.stdout(),
                self.stderr()
            );
        }
    }

    /// Wait for a line equal to `line` on stdout.
    pub fn wait_line(&self, line: &str) {
        self.wait_stdout(
            Duration::from_secs(30),
            &format!("the line {line:?}"),
            |s| s.lines().any(|l| l == line),
        );
    }

    /// Send `sig` to tracer (not its group).
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling a child we started and have not reaped.
        let r = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Close tracer's stdin, wait for it to exit (at most `timeout`) and return its output.
    pub fn finish(mut self, timeout: Duration) -> Output {
        drop(self.stdin.take());
        self.finish_keeping_stdin(timeout)
    }

    /// Wait for tracer to exit (at most `timeout`) with its stdin left as it is.
    pub fn finish_keeping_stdin(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            let child = self.child.as_mut().unwrap();
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                self.kill_group();
                panic!(
                    "tracer did not exit within {timeout:?}\n--- stdout\n{}--- stderr\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.child = None;
        // Wait for the pipes to close (a stray -c child could hold them: bounded).
        self.out.wait_for(Duration::from_secs(5), &|_| false);
        self.err.wait_for(Duration::from_secs(5), &|_| false);
        Output {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    fn kill_group(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: killing the process group we created (its id is our child's pid).
            unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
        for r in self.readers.drain(..) {
            // The reader threads end when the pipes close; do not hang on a stray holder.
            if r.is_finished() {
                let _ = r.join();
            }
        }
    }
}

/// Run tracer with `args` to completion (bounded by [`RUN_TIMEOUT`]).
pub fn run(args: &[&str]) -> Output {
    spawn(args).finish(RUN_TIMEOUT)
}

/// Lines of a quiet run's stdout without DTrace's final empty line (asserting that it is there).
pub fn body(out: &Output) -> Vec<String> {
    let s = out
        .stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout does not end with a newline\n{out}"));
    let s = s
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout does not end with DTrace's empty line\n{out}"));
    if s.is_empty() {
        return Vec::new();
    }
    s.split('\n').map(String::from).collect()
}

/// Whether process `pid` exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Poll `cond` every 20 ms for at most `timeout`.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process started by a test (not through tracer), killed and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn start(path: &Path, args: &[&str]) -> Proc {
        Proc(
            Command::new(path)
                .args(args)
                .stdin(Stdio::null())
                .spawn()
                .expect("cannot start target"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Wait (bounded) for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "target {} did not exit within {timeout:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The online CPUs, from `/sys/devices/system/cpu/online` ("0-3,5").
pub fn online_cpus() -> Vec<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// Busy threads, one pinned to each online CPU, so that no CPU is idle while they run.
pub struct Busy {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    pub fn every_cpu() -> Busy {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = online_cpus()
            .into_iter()
            .map(|cpu| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(cpu as usize, &mut set);
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                    }
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && Instant::now() < deadline
                    {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// eBPF programs loaded on the system (through the runtime library) and who holds them.
pub mod bpf {
    use tracer_runtime::{loaded_programs, LoadedProgram};

    /// Ids of every eBPF program loaded on the system.
    pub fn all_program_ids() -> Vec<u32> {
        tracer_runtime::loaded_program_ids()
    }

    fn program(id: u32) -> Option<LoadedProgram> {
        loaded_programs().into_iter().find(|p| p.id == id)
    }

    /// Whether program `id` is still loaded.
    pub fn exists(id: u32) -> bool {
        program(id).is_some()
    }

    /// The name of program `id`, or None when no such program is loaded.
    pub fn name(id: u32) -> Option<String> {
        program(id).map(|p| p.name)
    }

    /// The `bpf_prog_type` of program `id` (2 = kprobe, 26 = tracing: fentry/fexit).
    pub fn prog_type(id: u32) -> Option<u32> {
        program(id).map(|p| p.prog_type)
    }

    /// Processes holding a descriptor of program `id` (or of a link to it).
    pub fn holders(id: u32) -> Vec<u32> {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| program_ids_of(pid).contains(&id))
            .collect()
    }

    /// Ids of the programs process `pid` holds descriptors of (programs and links), from
    /// `/proc/PID/fdinfo`.
    pub fn program_ids_of(pid: u32) -> std::collections::BTreeSet<u32> {
        let mut ids = std::collections::BTreeSet::new();
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return ids;
        };
        for e in rd.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("prog_id:") {
                    ids.insert(v.trim().parse().unwrap());
                }
            }
        }
        ids
    }
}

/// Lines of a tracefs probe-event file (`uprobe_events`, `kprobe_events`); empty when the
/// file does not exist.
pub fn tracefs_events(file: &str) -> Vec<String> {
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if let Ok(s) = std::fs::read_to_string(format!("{root}/{file}")) {
            return s.lines().map(String::from).collect();
        }
    }
    Vec::new()
}

/// tests/targets/go/handler.go built with `go build` plus `flags` (once per flags), or None without Go.
pub fn go_target(flags: &[&str]) -> Option<PathBuf> {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let key = flags.join(" ");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(k, _)| *k == key) {
        return Some(p.clone());
    }
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("skipped: go is not installed (apt-get install golang-go)");
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/go/handler.go");
    let out = scratch().join(format!("handler{}", built.len()));
    // Go needs a writable build cache and home, which root in CI may not have.
    let home = scratch().join("gohome");
    let r = Command::new("go")
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .env("GOCACHE", home.join("cache"))
        .env("GOPATH", home.join("gopath"))
        .env("HOME", &home)
        .env("GOFLAGS", "")
        .output()
        .expect("cannot run go");
    assert!(
        r.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    built.push((key, out.clone()));
    Some(out)
}

/// Probe IDs as `tracer -l -n DESC` lists them, by `provider:module:function:name`.
pub fn listed_ids(desc: &str, extra: &[&str]) -> HashMap<String, u32> {
    let mut args = vec!["-l", "-n", desc];
    args.extend(extra);
    let out = run(&args).ok();
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [id, provider, module, function, name] = f[..] else {
                return None;
            };
            Some((
                format!("{provider}:{module}:{function}:{name}"),
                id.parse().ok()?,
            ))
        })
        .collect()
}

/// The rows of a run without -q whose clause printed `<%s %d>` of probefunc and id: per
/// row (row ID, FUNCTION, NAME, probefunc, id), after checking the row is whole.
pub fn id_rows(out: &Output) -> Vec<(u32, String, String, String, u32)> {
    out.stdout
        .lines()
        .filter(|l| l.contains('<'))
        .map(|l| {
            // CPU ID FUNCTION:NAME <probefunc id>
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "row {l:?}\n{out}");
            let (func, name) = f[2].rsplit_once(':').expect("FUNCTION:NAME");
            (
                f[1].parse().expect("row ID"),
                func.to_string(),
                name.to_string(),
                f[3].trim_start_matches('<').to_string(),
                f[4].trim_end_matches('>').parse().expect("id"),
            )
        })
        .collect()
}

/// Run tracer to completion with these arguments: (stdout, stderr, exit status).
pub fn tracer(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}
