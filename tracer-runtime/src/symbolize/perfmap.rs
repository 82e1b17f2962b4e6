//! JIT symbol maps (`/tmp/perf-PID.map`, perf's `jit-interface.txt`): one `START SIZE name`
//! line per JIT-compiled function, hex, with or without `0x` (Java's `jcmd PID
//! Compiler.perfmap` writes `0x`, which makes blazesym reject the whole file, so we parse it
//! ourselves). Runtimes append while they run, so the file is read incrementally.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// One function of a perf map.
#[derive(Debug, Clone, PartialEq)]
pub struct JitSym {
    pub start: u64,
    pub size: u64,
    pub name: String,
    /// Line order: a later line for the same addresses wins (JITs reuse code space).
    seq: u32,
}

/// `START SIZE name` (hex, optional `0x`), or None for anything else. Never panics.
pub fn parse_line(line: &str) -> Option<(u64, u64, &str)> {
    let hex = |s: &str| {
        let s = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        u64::from_str_radix(s, 16).ok()
    };
    let line = line.trim_end_matches(['\r', '\n']);
    let (start, rest) = line.trim_start().split_once(' ')?;
    let (size, name) = rest.trim_start().split_once(' ')?;
    let name = name.trim();
    let (start, size) = (hex(start)?, hex(size)?);
    // No JIT emits a function of 16 MiB; a bigger size would make every lookup scan far.
    if name.is_empty() || size == 0 || size > MAX_FUNCTION || start.checked_add(size).is_none() {
        return None;
    }
    Some((start, size, name))
}

/// The largest function size a line may give.
const MAX_FUNCTION: u64 = 16 << 20;

/// The most read from a map in one refresh (node writes tens of KiB; the rest comes later).
const MAX_READ: u64 = 64 << 20;

/// The functions of one process's perf map, re-read as it grows.
#[derive(Debug, Default)]
pub struct PerfMap {
    path: PathBuf,
    /// Sorted by start address, then line order.
    syms: Vec<JitSym>,
    /// How far the file has been consumed (up to the last complete line).
    consumed: u64,
    /// The file's identity when last read: a different file (or a shorter one) is read anew.
    ident: Option<(u64, u64)>,
    /// The longest function, which bounds the backward scan of `lookup`.
    max_size: u64,
    /// The uid the file must belong to besides root (the process's), when known.
    owner: Option<u32>,
}

impl PerfMap {
    pub fn new(path: PathBuf) -> PerfMap {
        PerfMap {
            path,
            ..Default::default()
        }
    }

    /// Only a file owned by root or `uid` is read (perf's rule: /tmp is anyone's).
    pub fn owned_by(mut self, uid: Option<u32>) -> PerfMap {
        self.owner = uid;
        self
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Read whatever was appended since the last call; a missing or unreadable file changes
    /// nothing (what was read stays). Returns whether new functions were added.
    pub fn refresh(&mut self) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        // /tmp is writable by anyone and tracer runs as root: never follow a symlink, never
        // block on a FIFO, read only a regular file of the process's owner or root.
        let Ok(mut file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)
        else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if !meta.is_file() || !(meta.uid() == 0 || self.owner.is_none_or(|u| u == meta.uid())) {
            return false;
        }
        let ident = (meta.dev(), meta.ino());
        if self.ident != Some(ident) || meta.len() < self.consumed {
            // Another file under that name (a new process with the same pid), or truncated.
            self.syms.clear();
            self.consumed = 0;
            self.max_size = 0;
            self.ident = Some(ident);
        }
        if meta.len() == self.consumed {
            return false;
        }
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(self.consumed)).is_err()
            || file.by_ref().take(MAX_READ).read_to_end(&mut buf).is_err()
        {
            return false;
        }
        // A last line without its newline may still be being written: leave it for later.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return false;
        };
        self.consumed += end as u64 + 1;
        self.add_text(&String::from_utf8_lossy(&buf[..=end]))
    }

    /// Add the functions of complete lines; malformed lines are skipped.
    pub fn add_text(&mut self, text: &str) -> bool {
        let before = self.syms.len();
        let mut seq = before as u32;
        for (start, size, name) in text.lines().filter_map(parse_line) {
            self.max_size = self.max_size.max(size);
            self.syms.push(JitSym {
                start,
                size,
                name: name.to_string(),
                seq,
            });
            seq = seq.wrapping_add(1);
        }
        if self.syms.len() == before {
            return false;
        }
        self.syms.sort_by_key(|s| (s.start, s.seq));
        true
    }

    /// The function containing `addr` and the offset into it; of overlapping ones, the one
    /// written last.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let upper = self.syms.partition_point(|s| s.start <= addr);
        self.syms[..upper]
            .iter()
            .rev()
            .take_while(|s| addr - s.start < self.max_size.max(1))
            .filter(|s| addr - s.start < s.size)
            .max_by_key(|s| s.seq)
            .map(|s| (s.name.as_str(), addr - s.start))
    }
}

/// Where process `pid`'s perf map is: a process in a pid namespace names it with its pid
/// there (the last `NStgid` field) and writes it into its own /tmp, which we reach through
/// `/proc/PID/root`.
pub fn perf_map_path(pid: u32) -> PathBuf {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    match innermost_pid(&status) {
        Some(ns) if ns != pid => PathBuf::from(format!("/proc/{pid}/root/tmp/perf-{ns}.map")),
        _ => PathBuf::from(format!("/tmp/perf-{pid}.map")),
    }
}

/// The pid in the innermost pid namespace: the last field of `NStgid` in /proc/PID/status.
fn innermost_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NStgid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse::<u32>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_0x_and_malformed_ones() {
        assert_eq!(
            parse_line("7f1c30005f00 1a0 JS:*hot /tmp/busy.js:1:13"),
            Some((0x7f1c30005f00, 0x1a0, "JS:*hot /tmp/busy.js:1:13"))
        );
        assert_eq!(
            parse_line("0x00007f35fcec7600 0x00000000000000b8 long Loop.f(long)\n"),
            Some((0x7f35fcec7600, 0xb8, "long Loop.f(long)"))
        );
        for bad in [
            "",
            "zz 10 f",
            "1000 10",
            "1000 10 ",
            "1000 0 empty",
            "ffffffffffffffff 10 wraps",
            "0x 10 f",
            "1000",
            "\u{fffd}\u{fffd} 1 f",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookup_prefers_the_last_written_of_overlapping_functions() {
        let mut m = PerfMap::default();
        m.add_text("1000 100 old\ngarbage line\n2000 10 other\n");
        assert_eq!(m.lookup(0x1010), Some(("old", 0x10)));
        assert_eq!(m.lookup(0x1100), None);
        assert_eq!(m.lookup(0xfff), None);
        m.add_text("0x1000 0x20 new\n");
        assert_eq!(m.lookup(0x1010), Some(("new", 0x10)));
        assert_eq!(m.lookup(0x1050), Some(("old", 0x50)));
        assert_eq!(m.lookup(0x2009), Some(("other", 9)));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn grows_with_the_file_and_leaves_a_partial_last_line_for_later() {
        let dir = std::env::temp_dir().join(format!("perfmap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("perf-1.map");
        let mut m = PerfMap::new(path.clone());
        assert!(!m.refresh(), "a missing file is no error");
        std::fs::write(&path, "1000 10 a\n2000 10 b").unwrap();
        assert!(m.refresh());
        assert_eq!(m.lookup(0x1001), Some(("a", 1)));
        assert_eq!(m.lookup(0x2001), None, "truncated last line");
        std::fs::write(&path, "1000 10 a\n2000 10 b\n3000 10 c\n").unwrap();
        assert!(m.refresh());
        assert_eq!(m.lookup(0x2001), Some(("b", 1)));
        assert_eq!(m.lookup(0x3001), Some(("c", 1)));
        assert!(!m.refresh(), "nothing new");
        // A shorter file is another one: read from the start.
        std::fs::write(&path, "4000 10 d\n").unwrap();
        m.refresh();
        assert_eq!(m.lookup(0x1001), None);
        assert_eq!(m.lookup(0x4001), Some(("d", 1)));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn container_processes_use_their_innermost_pid() {
        let status = "Name:\tnode\nTgid:\t4242\nNStgid:\t4242\t17\t1\nPid:\t4242\n";
        assert_eq!(innermost_pid(status), Some(1));
        assert_eq!(innermost_pid("NStgid:\t99\n"), Some(99));
        assert_eq!(innermost_pid("Name:\tx\n"), None);
        assert_eq!(innermost_pid("NStgid:\t\n"), None);
    }

    #[test]
    fn own_process_has_no_namespace_prefix() {
        let p = perf_map_path(std::process::id());
        let ns = p.to_string_lossy().into_owned();
        assert!(
            ns == format!("/tmp/perf-{}.map", std::process::id()) || ns.contains("/root/tmp/"),
            "{ns}"
        );
    }
}
