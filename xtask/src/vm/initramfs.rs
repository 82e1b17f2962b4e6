//! The initramfs of one architecture: busybox, an `/init` that mounts what tracer needs and
//! runs the test executables, and the payload at the paths the tests were compiled with.
//!
//! The integration tests bake host paths in at compile time (`CARGO_BIN_EXE_tracer`,
//! `CARGO_MANIFEST_DIR/../tests/…`, `CARGO_TARGET_TMPDIR`), so the tracer binary and the
//! workspace's test data are placed at those same absolute paths inside the VM. The tests build
//! their C targets with `cc` at run time; inside the VM `cc` is a shim that copies the target
//! prebuilt (statically) on the host.

use super::cpio::Cpio;
use super::payload::{Payload, TestRun};
use anyhow::Result;
use std::path::Path;

/// Where the test executables and the prebuilt C targets live in the VM.
const BIN: &str = "/vmtest/bin";
const TARGETS: &str = "/vmtest/targets";

pub struct Options<'a> {
    /// Seconds one test executable may run before it is killed.
    pub binary_timeout: u64,
    /// Extra arguments for every test executable (filters, `--skip`, …).
    pub test_args: &'a [String],
    /// A shell command to run instead of the test executables (`--shell`, for diagnosis).
    pub shell: Option<&'a str>,
}

pub fn build(
    path: &Path,
    root: &Path,
    busybox: &Path,
    payload: &Payload,
    opts: &Options,
) -> Result<u64> {
    let mut c = Cpio::create(path)?;
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
        "etc",
        "mnt",
    ] {
        c.dir(d)?;
    }
    // The kernel opens /dev/console for init before anything is mounted.
    c.char_dev("dev/console", 0o600, 5, 1)?;
    c.file("bin/busybox", busybox)?;
    c.symlink("bin/sh", "busybox")?;
    c.bytes(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    c.bytes("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;

    // The workspace's test data, at its host path.
    for sub in [
        "tests",
        "examples",
        "tracer-cli",
        "tracer-runtime",
        "tracer-output",
    ] {
        let src = root.join(sub);
        if src.is_dir() {
            c.tree(&src.to_string_lossy(), &src)?;
        }
    }
    c.file(&payload.tracer.to_string_lossy(), &payload.tracer)?;
    // Under their cargo file names (`kernel_syscall-0123…`): tests may check their own name.
    // (run, file) of each run; a binary split into module runs is copied once.
    let mut runs = Vec::new();
    let mut copied = std::collections::HashSet::new();
    for run in &payload.tests {
        let file = run.exe.file_name().unwrap().to_string_lossy().into_owned();
        if copied.insert(file.clone()) {
            c.file(&format!("{BIN}/{file}"), &run.exe)?;
        }
        runs.push((run, file));
    }
    // The dynamic loader and libc of the C targets, at the paths the targets name.
    for (path, src) in &payload.libs {
        c.file(path, src)?;
    }
    for (name, exe) in &payload.targets {
        c.file(&format!("{TARGETS}/{name}"), exe)?;
    }
    let why = payload
        .targets_skipped
        .as_deref()
        .unwrap_or("it was not built")
        .replace('\'', "");
    c.bytes("usr/local/bin/cc", 0o755, cc_shim(&why).as_bytes())?;
    if !payload.go_targets.is_empty() {
        for (name, exe) in &payload.go_targets {
            c.file(&format!("{TARGETS}/{name}"), exe)?;
        }
        c.bytes(
            "usr/local/bin/go",
            0o755,
            super::go_targets::shim(TARGETS).as_bytes(),
        )?;
    }
    // busybox's setpriv has neither --version (which the tests probe) nor --reuid.
    c.bytes("usr/local/bin/setpriv", 0o755, SETPRIV.as_bytes())?;
    c.bytes("etc/hostname", 0o644, b"vmtest\n")?;
    // With --shell the test executables are there for the command to run, but none runs
    // on its own.
    if opts.shell.is_some() {
        runs.clear();
    }
    c.bytes("init", 0o755, init_script(&runs, opts).as_bytes())?;
    c.finish()
}

/// setpriv as the tests use it (`--reuid=N --regid=N --clear-groups --inh-caps=-all PROG…`),
/// through busybox's su: switching from root to another uid drops every capability.
const SETPRIV: &str = r#"#!/bin/sh
uid=
while [ $# -gt 0 ]; do
  case "$1" in
    --version) echo "setpriv (vm-test shim over busybox su)"; exit 0 ;;
    --reuid=*) uid=${1#--reuid=} ;;
    --regid=*|--clear-groups|--inh-caps=*) ;;
    -*) echo "setpriv (vm-test shim): unsupported option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
user=$(awk -F: -v u="$uid" '$3 == u { print $1; exit }' /etc/passwd)
exec su -s /bin/sh -c 'exec "$0" "$@"' -- "${user:-nobody}" "$@"
"#;

/// `cc [flags] -o OUT SRC.c`: copy the prebuilt `SRC` to OUT.
fn cc_shim(why_missing: &str) -> String {
    format!(
        r#"#!/bin/sh
# vm-test: the C targets were built statically on the host; copy the one asked for.
out=; src=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift ;;
    *.c) src=$1 ;;
  esac
  shift
done
name=$(basename "$src" .c)
if [ ! -x "{TARGETS}/$name" ]; then
  echo "skipped: the C target $name was not built for this architecture: {why_missing}" >&2
  exit 1
fi
cp "{TARGETS}/$name" "$out"
"#
    )
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The guest's `/init`: mount, then run each test run (with its executable's file name) in turn.
fn init_script(runs: &[(&TestRun, String)], opts: &Options) -> String {
    let args: Vec<String> = opts.test_args.iter().map(|a| sh_quote(a)).collect();
    // With a filter of the user's (a positional test argument) a module run skips the
    // other modules instead: libtest ORs filters, and the user's must still apply.
    let user_filter = opts.test_args.iter().any(|a| !a.starts_with('-'));
    let tests: String = runs
        .iter()
        .map(|(run, file)| {
            let select = match &run.filter {
                None => String::new(),
                Some(f) if !user_filter => format!(" {}", sh_quote(f)),
                Some(_) => run
                    .others
                    .iter()
                    .map(|o| format!(" --skip {}", sh_quote(o)))
                    .collect(),
            };
            format!("run_test {} {file}{select}\n", run.name)
        })
        .collect();
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# Not a tmpfs mount: the payload keeps its host paths, which may lie under /tmp (a clone
# there), and a mount would hide them. The initramfs root is writable already.
chmod 1777 /tmp
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname vmtest
ip link set lo up 2>/dev/null
ulimit -l unlimited
echo "VMTEST_BOOTED $(uname -r) $(uname -m) uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(nproc)"
failed=0
run_test() {{
  name=$1
  exe=$2
  shift 2
  echo "VMTEST_RUN $name"
  cd /
  timeout -s KILL {timeout} {BIN}/$exe "$@" --test-threads=1 --show-output --color never {args}
  rc=$?
  echo "VMTEST_DONE $name rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
  [ $rc -eq 0 ] || failed=$((failed + 1))
}}
{shell}{tests}if [ $failed -ne 0 ]; then
  echo "VMTEST_DMESG"
  dmesg | tail -n 40
fi
echo "VMTEST_EXIT_CODE=$failed"
sync
poweroff -f
"#,
        tests = tests,
        // The command's status is the cell's: no test executable runs after it.
        shell = match opts.shell {
            Some(cmd) => format!(
                "echo VMTEST_RUN shell\n(cd /tmp && sh -c {})\nfailed=$?\necho \"VMTEST_DONE shell rc=$failed\"\n",
                sh_quote(cmd)
            ),
            None => String::new(),
        },
        timeout = opts.binary_timeout,
        args = args.join(" "),
    )
}
