//! Facts about the running kernel that decide how tracer compiles and attaches: its version
//! (read once) and the offset between the boot clock and the wall clock.

use std::sync::OnceLock;

/// The running kernel's (major, minor) version, (0, 0) when unknown.
pub fn kernel_version() -> (u32, u32) {
    static VERSION: OnceLock<(u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        parse_release(&release)
    })
}

/// "6.1.0-18-cloud-amd64" → (6, 1).
pub fn parse_release(release: &str) -> (u32, u32) {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    kernel_version() >= (major, minor)
}

/// ns to add to `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) for `walltimestamp`.
pub fn boot_to_wall_ns() -> i64 {
    let mut mono = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut real = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both pointers are valid timespecs; clock_gettime only writes them.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut mono);
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut real);
    }
    let ns = |t: libc::timespec| t.tv_sec * 1_000_000_000 + t.tv_nsec;
    ns(real) - ns(mono)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.1.0-18-cloud-amd64\n"), (6, 1));
        assert_eq!(parse_release("5.10.209"), (5, 10));
        assert_eq!(parse_release(""), (0, 0));
    }
}
