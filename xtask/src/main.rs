//! Project tasks: `cargo xtask test` runs the whole host suite (as root, against the running
//! kernel). `vm-test` runs it on other kernels and architectures in qemu; `ci` runs both,
//! the host suite and then every kernel of the matrix on both arches: this is what `.ci/run`
//! calls. `bench` measures tracer against bpftrace.

mod bench;
mod vm;

use anyhow::{bail, Context, Result};
use std::process::Command;

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

extern "C" {
    fn geteuid() -> u32;
}

/// Mount tracefs if the kernel has it and nothing mounted it yet.
fn ensure_tracefs() {
    if std::path::Path::new("/sys/kernel/tracing/events").exists()
        || std::path::Path::new("/sys/kernel/debug/tracing/events").exists()
    {
        return;
    }
    let _ = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status();
}

fn test() -> Result<()> {
    if !is_root() {
        bail!("the test suite loads eBPF programs into the running kernel: run it as root (sudo cargo xtask test)");
    }
    ensure_tracefs();
    run(Command::new("cargo").args(["build", "--workspace", "--all-targets"]))?;
    // One test binary at a time: kernel tests count loaded programs and share the CPU.
    run(Command::new("cargo").args(["test", "--workspace", "--", "--test-threads=1"]))?;
    Ok(())
}

/// The host suite, then the whole VM matrix (which installs what it needs itself).
fn ci() -> Result<()> {
    let start = std::time::Instant::now();
    test()?;
    eprintln!("xtask: host suite passed in {:.0?}", start.elapsed());
    let matrix = std::time::Instant::now();
    let ok = vm::vm_test_args(&["--arch".to_string(), "all".to_string()]);
    eprintln!(
        "xtask: VM matrix took {:.0?}; ci took {:.0?} in all",
        matrix.elapsed(),
        start.elapsed()
    );
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(),
        Some("vm-test") => vm::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci         the host suite, then the VM matrix (what CI runs)"
            );
            eprintln!("       cargo xtask test       run every test against this machine's kernel (as root)");
            eprintln!(
                "       cargo xtask vm-test    run the suite on other kernels and arches in qemu"
            );
            eprintln!("       cargo xtask bench      measure tracer against bpftrace");
            std::process::exit(2);
        }
    };
    // The message alone: with RUST_BACKTRACE set (CI), returning the error would print a
    // backtrace of xtask itself, which pushes the failures out of the log's tail.
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}
