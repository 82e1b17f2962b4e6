//! One run of a tracing tool: spawned, watched for the line that says its probes are live,
//! stopped with SIGINT, and reaped with its resource usage.

use super::sys::{self, Exit};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The line every benchmark script prints from its trigger clause once the bench's own
/// getpgid() calls are seen.
pub const LIVE: &str = "live";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Tool {
    Tracer,
    Bpftrace,
}

impl Tool {
    pub const BOTH: [Tool; 2] = [Tool::Tracer, Tool::Bpftrace];
    pub fn name(self) -> &'static str {
        match self {
            Tool::Tracer => "tracer",
            Tool::Bpftrace => "bpftrace",
        }
    }
}

pub enum Out {
    /// Read stdout line by line (with the time each line arrived).
    Pipe,
    /// Send stdout to a file.
    File(PathBuf),
}

pub struct Session {
    pub pid: i32,
    pub start: Instant,
    child: Child,
    lines: Option<Receiver<(Instant, String)>>,
    seen: Vec<String>,
    out_file: Option<PathBuf>,
    stderr: Arc<Mutex<String>>,
    exit: Option<(Instant, Exit)>,
}

impl Session {
    pub fn spawn(bin: &Path, args: &[String], out: Out) -> Result<Session> {
        let mut cmd = Command::new(bin);
        cmd.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
        let out_file = match out {
            Out::Pipe => {
                cmd.stdout(Stdio::piped());
                None
            }
            Out::File(path) => {
                let f = std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                cmd.stdout(f);
                Some(path)
            }
        };
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let pid = child.id() as i32;
        let lines = child.stdout.take().map(|stdout| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if tx
                                .send((Instant::now(), line.trim_end().to_string()))
                                .is_err()
                            {
                                // Nobody listens any more: keep draining so the tool never blocks.
                                let mut sink = Vec::new();
                                let _ = r.read_to_end(&mut sink);
                                break;
                            }
                        }
                    }
                }
            });
            rx
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut e) = child.stderr.take() {
            let buf = stderr.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = e.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        Ok(Session {
            pid,
            start,
            child,
            lines,
            seen: Vec::new(),
            out_file,
            stderr,
            exit: None,
        })
    }

    /// Whether the tool has ended (reaps it when it has).
    pub fn poll_exit(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            if let Some(e) = sys::reap(self.pid, false) {
                self.exit = Some((Instant::now(), e));
            }
        }
        self.exit.map(|e| e.1)
    }

    /// Wait up to `timeout` for the tool to end on its own; the time it ended.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<(Instant, Exit)> {
        let deadline = Instant::now() + timeout;
        while self.poll_exit().is_none() {
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        self.exit
    }

    /// Wait until a stdout line equal to each of `wants` (trimmed) has been printed; the time
    /// the last of them arrived.
    pub fn wait_lines(&mut self, wants: &[&str], timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut missing: Vec<&str> = wants.to_vec();
        if let Some(path) = self.out_file.clone() {
            loop {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    missing.retain(|w| !text.lines().any(|l| l.trim() == *w));
                    if missing.is_empty() {
                        return Some(Instant::now());
                    }
                }
                if Instant::now() >= deadline || self.poll_exit().is_some() {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let rx = self.lines.as_ref()?;
        let mut take = |at: Instant, line: String, seen: &mut Vec<String>| -> Option<Instant> {
            missing.retain(|w| line.trim() != *w);
            seen.push(line);
            missing.is_empty().then_some(at)
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok((at, line)) => {
                    if let Some(at) = take(at, line, &mut self.seen) {
                        return Some(at);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    if self.exit.is_none() {
                        if let Some(e) = sys::reap(self.pid, false) {
                            self.exit = Some((Instant::now(), e));
                        }
                    }
                    if self.exit.is_some() {
                        // Drain what the tool printed before it ended.
                        while let Ok((at, line)) = rx.recv_timeout(Duration::from_millis(100)) {
                            if let Some(at) = take(at, line, &mut self.seen) {
                                return Some(at);
                            }
                        }
                        return None;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Call getpgid() and getsid() every millisecond until the script's trigger clause prints
    /// `live`; the time from spawn until that line arrived.
    pub fn wait_live(&mut self, timeout: Duration) -> Option<Duration> {
        self.wait_triggered(&[LIVE], timeout)
    }

    /// Call getpgid() and getsid() every millisecond until the script has printed each of
    /// `wants`; the time from spawn until the last of them arrived.
    pub fn wait_triggered(&mut self, wants: &[&str], timeout: Duration) -> Option<Duration> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let pinger = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                sys::trigger();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let at = self.wait_lines(wants, timeout);
        stop.store(true, Ordering::Relaxed);
        let _ = pinger.join();
        at.map(|t| t.duration_since(self.start))
    }

    /// Every stdout line read so far (pipe mode), after draining what is pending.
    pub fn stdout_lines(&mut self) -> &[String] {
        if let Some(rx) = &self.lines {
            let wait = if self.exit.is_some() { 200 } else { 0 };
            while let Ok((_, line)) = rx.recv_timeout(Duration::from_millis(wait)) {
                self.seen.push(line);
            }
        }
        &self.seen
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The last lines of stderr, for a failure note.
    pub fn stderr_tail(&self) -> String {
        let e = self.stderr();
        let lines: Vec<&str> = e
            .lines()
            .filter(|l| !l.contains("RLIMIT_MEMLOCK") && !l.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(2)..].join(" / ")
    }

    pub fn hwm_kib(&self) -> Option<u64> {
        if self.exit.is_some() {
            return None;
        }
        sys::vm_hwm_kib(self.pid)
    }

    /// SIGINT, then up to 20 s for the tool to print its aggregations and end, then SIGKILL.
    pub fn stop(&mut self) -> Exit {
        if let Some(e) = self.exit {
            return e.1;
        }
        sys::signal(self.pid, sys::SIGINT);
        if let Some(e) = self.wait_exit(Duration::from_secs(20)) {
            return e.1;
        }
        sys::signal(self.pid, sys::SIGKILL);
        let e = sys::reap(self.pid, true).expect("blocking wait");
        self.exit = Some((Instant::now(), e));
        e
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.exit.is_none() {
            sys::signal(self.pid, sys::SIGKILL);
            if let Some(e) = sys::reap(self.pid, true) {
                self.exit = Some((Instant::now(), e));
            }
        }
        // The std Child was reaped by wait4 above; dropping it only closes pipes.
        let _ = &self.child;
    }
}
