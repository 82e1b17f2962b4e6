//! `cargo xtask vm-test [--arch x86_64|aarch64|all] [--kernel VERSION…] [--keep] [--timeout SECS]
//! [--test NAME…] [-- TEST-ARGS…]`: the kernel-facing test suites on Debian's cloud kernels, for
//! x86_64 and aarch64, in qemu under TCG.
//!
//! 1. Kernels and busybox-static come from Debian with apt only, through private apt states
//!    under `target/vm/apt` (the machine's `/etc/apt` is untouched); `.deb`s are cached in
//!    `target/vm/debs`, extracted kernels in `target/vm/kernels`.
//! 2. The payload is built statically for `<arch>-unknown-linux-musl` (`rustup target add`
//!    when missing; aarch64-linux-gnu-gcc links aarch64): the `tracer` binary, every test executable of
//!    tracer-cli, and the C programs of `tests/targets` (gcc / aarch64-linux-gnu-gcc -static).
//! 3. One initramfs per arch (newc cpio written here) holds busybox, `/init`, and the payload
//!    at the host paths the tests were compiled with.
//! 4. Each kernel boots under TCG; `/init` runs each test executable with `--test-threads=1`,
//!    prints `VMTEST_EXIT_CODE=N` and powers off. A boot without that marker (a crash or a
//!    hang) is retried once.
//! 5. One summary line per cell; the exit status is non-zero when any cell failed.
//!
//! Adding a kernel is one line in [`KERNELS`].

mod apt;
mod cpio;
mod go_targets;
mod initramfs;
mod payload;
mod qemu;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where a kernel package comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Suite {
    /// bookworm, bookworm-updates and bookworm-security (6.1 and 6.12).
    Bookworm,
    /// sid: the newest kernel Debian has.
    Sid,
}

/// One kernel of the matrix: the newest package whose name matches `package` (an apt-cache
/// regular expression, `{arch}` standing for amd64 or arm64) in `suite`.
pub struct Kernel {
    /// What `--kernel` selects it by (a prefix of the kernel's release string works too).
    pub name: &'static str,
    pub suite: Suite,
    pub package: &'static str,
}

/// The kernels that `vm-test` runs by default: one line each.
pub const KERNELS: &[Kernel] = &[
    Kernel {
        name: "6.1",
        suite: Suite::Bookworm,
        package: r"linux-image-6\.1\.0-[0-9]+-cloud-{arch}",
    },
    Kernel {
        name: "6.12",
        suite: Suite::Bookworm,
        package: r"linux-image-6\.12\.[0-9]+\+deb12-cloud-{arch}",
    },
    // sid splits the kernel out of linux-image-*: the image is in linux-binary-unsigned-*.
    Kernel {
        name: "sid",
        suite: Suite::Sid,
        package: r"linux-binary-unsigned-[0-9.]+\+deb[0-9]+-cloud-{arch}",
    },
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    fn deb(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    fn c_compiler(self) -> &'static str {
        match self {
            Arch::X86_64 => "gcc",
            Arch::Aarch64 => "aarch64-linux-gnu-gcc",
        }
    }

    fn c_packages(self) -> &'static str {
        match self {
            Arch::X86_64 => "gcc libc6-dev",
            Arch::Aarch64 => "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
        }
    }

    fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Aarch64 => "qemu-system-arm",
        }
    }

    fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }
}

struct Options {
    arches: Vec<Arch>,
    kernels: Vec<String>,
    keep: bool,
    timeout: Duration,
    tests: Vec<String>,
    test_args: Vec<String>,
    shell: Option<String>,
}

const USAGE: &str =
    "usage: cargo xtask vm-test [--arch x86_64|aarch64|all] [--kernel VERSION…] [--keep]
                           [--timeout SECS] [--test NAME…] [--shell CMD] [-- TEST-ARGS…]
  --arch      which architectures (default: all)
  --kernel    which kernels, by name (6.1, 6.12, sid) or release prefix (7.2); default: all
  --keep      keep each cell's initramfs and print the qemu command that boots it
  --timeout   seconds one boot may take, tests included (default 2400)
  --test      which test executables (kernel_syscall, scripts, tracer_runtime, …)
  --shell     run this shell command in the guest (in /tmp, as root) instead of the tests
  -- ARGS     passed to every test executable (a name filter, --skip NAME, …)";

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        arches: Arch::ALL.to_vec(),
        kernels: Vec::new(),
        keep: false,
        timeout: Duration::from_secs(2400),
        tests: Vec::new(),
        test_args: Vec::new(),
        shell: None,
    };
    let mut i = 0;
    // The values of a multi-valued flag: every following argument up to the next flag.
    let values = |i: &mut usize| -> Vec<String> {
        let mut v = Vec::new();
        while *i + 1 < args.len() && !args[*i + 1].starts_with("--") {
            *i += 1;
            v.extend(
                args[*i]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        v
    };
    while i < args.len() {
        match args[i].as_str() {
            "--arch" => {
                let v = values(&mut i);
                o.arches.clear();
                for a in &v {
                    match a.as_str() {
                        "all" => o.arches = Arch::ALL.to_vec(),
                        "x86_64" | "amd64" => o.arches.push(Arch::X86_64),
                        "aarch64" | "arm64" => o.arches.push(Arch::Aarch64),
                        _ => bail!("unknown architecture {a}\n{USAGE}"),
                    }
                }
                if o.arches.is_empty() {
                    bail!("--arch needs a value\n{USAGE}");
                }
                o.arches.dedup();
            }
            "--kernel" => {
                let v = values(&mut i);
                if v.is_empty() {
                    bail!("--kernel needs a value\n{USAGE}");
                }
                o.kernels.extend(v);
            }
            "--test" => {
                let v = values(&mut i);
                if v.is_empty() {
                    bail!("--test needs a value\n{USAGE}");
                }
                o.tests.extend(v);
            }
            "--keep" => o.keep = true,
            "--shell" => {
                i += 1;
                let cmd = args
                    .get(i)
                    .with_context(|| format!("--shell needs a command\n{USAGE}"))?;
                o.shell = Some(cmd.clone());
            }
            "--timeout" => {
                i += 1;
                let secs: u64 = args
                    .get(i)
                    .and_then(|s| s.parse().ok())
                    .with_context(|| format!("--timeout needs a number of seconds\n{USAGE}"))?;
                o.timeout = Duration::from_secs(secs);
            }
            "--" => {
                o.test_args = args[i + 1..].to_vec();
                break;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            a => bail!("unknown argument {a}\n{USAGE}"),
        }
        i += 1;
    }
    Ok(o)
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("vm-test: running {cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(())
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Install with apt what the host lacks: qemu, the C compilers, dpkg-deb, <sys/sdt.h>.
fn host_tools(arches: &[Arch]) -> Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    for &a in arches {
        if !have(a.qemu()) {
            missing.push(a.qemu_package());
        }
        if !have(a.c_compiler()) {
            missing.extend(a.c_packages().split(' '));
        }
    }
    if !have("dpkg-deb") {
        missing.push("dpkg");
    }
    // <sys/sdt.h> for the USDT C targets.
    if payload::sdt_dir().is_none() {
        missing.push("systemtap-sdt-dev");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    eprintln!("vm-test: installing {}", missing.join(" "));
    if !install() {
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        if !install() {
            bail!("apt-get install {} failed", missing.join(" "));
        }
    }
    Ok(())
}

/// A kernel to boot for one arch, or why it cannot be had.
struct Cell {
    arch: Arch,
    kernel: &'static Kernel,
    image: Result<(PathBuf, String), String>,
}

impl Cell {
    fn label(&self) -> String {
        match &self.image {
            Ok((_, release)) => format!("{} {release}", self.arch.name()),
            Err(_) => format!("{} {}", self.arch.name(), self.kernel.name),
        }
    }
}

fn fetch_kernel(
    cache: &Path,
    apts: &mut [(Suite, apt::Apt)],
    kernel: &Kernel,
    arch: Arch,
) -> Result<(PathBuf, String)> {
    let apt = &mut apts.iter_mut().find(|(s, _)| *s == kernel.suite).unwrap().1;
    let re = format!("^{}$", kernel.package.replace("{arch}", arch.deb()));
    let package = apt.newest(&re)?;
    let deb = apt.download(&package, arch, &cache.join("debs"))?;
    let dir = cache
        .join("kernels")
        .join(deb.file_stem().unwrap().to_string_lossy().as_ref());
    apt::extract(&deb, &dir)?;
    apt::find_kernel(&dir)
}

pub fn main(args: &[String]) -> Result<()> {
    if vm_test_args(args).is_err() {
        std::process::exit(1);
    }
    Ok(())
}

/// `vm-test` with these arguments: an error when a cell failed or nothing could run.
pub fn vm_test_args(args: &[String]) -> Result<()> {
    match vm_test(args) {
        Ok(true) => Ok(()),
        Ok(false) => bail!("vm-test: a cell failed (see the summary above)"),
        Err(e) => {
            eprintln!("vm-test: {e:#}");
            Err(e)
        }
    }
}

/// Whether every cell passed.
fn vm_test(args: &[String]) -> Result<bool> {
    let o = parse(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    };
    let cache = target_dir.join("vm");
    std::fs::create_dir_all(&cache)?;
    let by_name = |k: &Kernel| o.kernels.iter().any(|w| w == k.name);
    // Selectors that name no kernel are release prefixes (7.2), matched once resolved.
    let prefixes: Vec<&String> = o
        .kernels
        .iter()
        .filter(|w| !KERNELS.iter().any(|k| k.name == w.as_str()))
        .collect();
    let kernels: Vec<&'static Kernel> = KERNELS
        .iter()
        .filter(|k| o.kernels.is_empty() || by_name(k) || !prefixes.is_empty())
        .collect();
    host_tools(&o.arches)?;

    // Kernels first: a cell whose kernel cannot be fetched fails, the others still run.
    let t0 = Instant::now();
    let mut apts = vec![
        (Suite::Bookworm, apt::Apt::new(&cache, Suite::Bookworm)?),
        (Suite::Sid, apt::Apt::new(&cache, Suite::Sid)?),
    ];
    let mut cells = Vec::new();
    for &arch in &o.arches {
        for &kernel in &kernels {
            let image = fetch_kernel(&cache, &mut apts, kernel, arch).map_err(|e| format!("{e:#}"));
            if !o.kernels.is_empty() && !by_name(kernel) {
                match &image {
                    Ok((_, rel)) if prefixes.iter().any(|w| rel.starts_with(w.as_str())) => {}
                    _ => continue,
                }
            }
            cells.push(Cell {
                arch,
                kernel,
                image,
            });
        }
    }
    if cells.is_empty() {
        bail!(
            "no kernel matches {:?}; the kernels are {}",
            o.kernels,
            KERNELS
                .iter()
                .map(|k| k.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!("vm-test: kernels ready in {:.0?}", t0.elapsed());

    let logs = cache.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    let mut any_failed = false;
    let (mut total_passed, mut total_failed, mut total_skipped) = (0, 0, 0);
    for &arch in &o.arches {
        let arch_cells: Vec<&Cell> = cells.iter().filter(|c| c.arch == arch).collect();
        if arch_cells.is_empty() {
            continue;
        }
        let t = Instant::now();
        let work = cache.join("work").join(arch.name());
        std::fs::create_dir_all(&work)?;
        let prepared = prepare(&root, &cache, &work, arch, &o);
        let (initrd, targets_skipped) = match prepared {
            Ok(x) => x,
            Err(e) => {
                for c in arch_cells {
                    any_failed = true;
                    summary.push(format!(
                        "FAIL {} (cannot build the payload: {e:#})",
                        c.label()
                    ));
                }
                continue;
            }
        };
        eprintln!(
            "vm-test: {} payload and initramfs ready in {:.0?}",
            arch.name(),
            t.elapsed()
        );
        for c in arch_cells {
            let (kernel, release) = match &c.image {
                Ok(k) => k,
                Err(e) => {
                    any_failed = true;
                    summary.push(format!("FAIL {} (cannot fetch the kernel: {e})", c.label()));
                    continue;
                }
            };
            let label = c.label();
            let log = logs.join(format!("{}-{release}.log", arch.name()));
            let start = Instant::now();
            let mut boot = None;
            for attempt in 1..=2 {
                eprintln!(
                    "vm-test: booting {label} (attempt {attempt}); console log in {}",
                    log.display()
                );
                let b = match qemu::boot(
                    arch,
                    kernel,
                    &initrd,
                    o.timeout,
                    &log,
                    &format!("[{label}] "),
                ) {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("vm-test: {label}: {e:#}");
                        qemu::Boot::default()
                    }
                };
                let done = b.exit_code.is_some();
                boot = Some(b);
                if done {
                    break;
                }
                let kept = log.with_extension(format!("attempt{attempt}.log"));
                let _ = std::fs::copy(&log, &kept);
                eprintln!(
                    "vm-test: {label}: no VMTEST_EXIT_CODE marker (crash or hang; log kept in {})",
                    kept.display()
                );
            }
            let b = boot.unwrap();
            let secs = start.elapsed().as_secs();
            let time = format!("{}m{:02}s", secs / 60, secs % 60);
            for (test, why) in &b.skipped {
                summary.push(format!("SKIP {label} {test}: {why}"));
            }
            if let Some(why) = &targets_skipped {
                summary.push(format!("SKIP {label} C targets: {why}"));
            }
            for (test, lines) in &b.panics {
                if b.failed.iter().any(|f| f == test) {
                    failures.push((label.clone(), test.clone(), lines.clone()));
                }
            }
            total_passed += b.passed;
            total_skipped += b.skipped.len();
            let n = b.passed + b.failed.len();
            let skipped = if b.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} skipped", b.skipped.len())
            };
            match b.exit_code {
                Some(0) if b.failed.is_empty() && b.passed > 0 => {
                    summary.push(format!("PASS {label} ({n} tests{skipped}, {time})"));
                }
                Some(_) => {
                    any_failed = true;
                    total_failed += b.failed.len().max(1);
                    let names = if b.failed.is_empty() {
                        "no test ran".to_string()
                    } else {
                        b.failed.join(", ")
                    };
                    summary.push(format!(
                        "FAIL {label} ({} failed: {names}; {n} tests{skipped}, {time})",
                        b.failed.len()
                    ));
                }
                None => {
                    any_failed = true;
                    total_failed += b.failed.len().max(1);
                    let why = if b.timed_out {
                        "timed out"
                    } else {
                        "no VMTEST_EXIT_CODE marker"
                    };
                    let mut names = b.failed.clone();
                    if names.is_empty() {
                        names.push("the VM".into());
                    }
                    summary.push(format!(
                        "FAIL {label} ({why} twice; {} failed: {}; {time}; see {})",
                        names.len(),
                        names.join(", "),
                        log.display()
                    ));
                }
            }
            if o.keep {
                let cmd = qemu::command(arch, kernel, &initrd);
                eprintln!("vm-test: boot it again with: {cmd:?}");
            }
        }
        if !o.keep {
            let _ = std::fs::remove_file(&initrd);
        }
    }
    println!();
    println!("vm-test summary:");
    for l in &summary {
        println!("{l}");
    }
    // Last, where a CI log's tail shows it: why each failed test failed.
    for (label, test, lines) in &failures {
        println!("--- {label} {test}:");
        for l in lines {
            println!("    {l}");
        }
    }
    println!("vm-test: {total_passed} passed, {total_failed} failed, {total_skipped} skipped");
    Ok(!any_failed)
}

/// Build the payload and the initramfs of one arch; returns the initramfs and why the C
/// targets are missing (if they are).
fn prepare(
    root: &Path,
    cache: &Path,
    work: &Path,
    arch: Arch,
    o: &Options,
) -> Result<(PathBuf, Option<String>)> {
    let mut p = payload::build(root, arch, work)?;
    if !o.tests.is_empty() {
        for t in &o.tests {
            if !p.tests.iter().any(|r| &r.name == t) {
                bail!(
                    "no test executable {t}; there are {}",
                    p.tests
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        p.tests.retain(|r| o.tests.contains(&r.name));
    }
    let mut bb_apt = apt::Apt::new(cache, Suite::Bookworm)?;
    let deb = bb_apt.download("busybox-static", arch, &cache.join("debs"))?;
    let dir = cache.join("busybox").join(arch.deb());
    apt::extract(&deb, &dir)?;
    let busybox = dir.join("bin/busybox");
    anyhow::ensure!(busybox.exists(), "no bin/busybox in {}", deb.display());
    let initrd = work.join("initramfs.cpio");
    let size = initramfs::build(
        &initrd,
        root,
        &busybox,
        &p,
        &initramfs::Options {
            binary_timeout: o.timeout.as_secs().saturating_sub(120).max(60),
            test_args: &o.test_args,
            shell: o.shell.as_deref(),
        },
    )?;
    eprintln!("vm-test: {} ({} MB)", initrd.display(), size / (1 << 20));
    Ok((initrd, p.targets_skipped))
}
