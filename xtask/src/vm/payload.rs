//! What runs inside the VM, built for one architecture: the `tracer` binary and the test
//! executables (statically linked, musl) of the packages that touch the kernel: tracer-cli's
//! integration tests and the unit tests of the runtime and output libraries, and the C programs
//! of `tests/targets` that the tests trace (glibc, as on the host).

use super::Arch;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Payload {
    /// The `tracer` binary, at the path the tests were compiled with (`CARGO_BIN_EXE_tracer`).
    pub tracer: PathBuf,
    /// What the guest runs, one after the other: each module of the integration tests
    /// (`kernel_syscall`, `scripts`, …) and each library's unit tests (`tracer_runtime`, …).
    pub tests: Vec<TestRun>,
    /// (name, executable) of each `tests/targets/NAME.c`; empty with `targets_skipped`.
    pub targets: Vec<(String, PathBuf)>,
    pub targets_skipped: Option<String>,
    /// (name, executable) of the Go programs (`go/NAME`, `go/NAME-stripped`); empty when the
    /// host has no Go, and then the guest has no `go` and the Go tests say they are skipped.
    pub go_targets: Vec<(String, PathBuf)>,
    /// (path in the VM, host file): the dynamic loader and the libraries the targets use.
    pub libs: Vec<(String, PathBuf)>,
}

/// One test executable run in the guest, or one module of it.
pub struct TestRun {
    /// What `--test` selects and the report names.
    pub name: String,
    pub exe: PathBuf,
    /// A libtest filter (`kernel_syscall::`) when the run is one module of a larger binary.
    pub filter: Option<String>,
    /// The filters of the binary's other modules, skipped instead when the user gives a
    /// filter of their own (libtest ORs filters).
    pub others: Vec<String>,
}

/// tracer-cli's one integration-test binary (`tests/tests.rs`), run module by module so that
/// `--test MODULE` selects as it did when every module was a binary of its own.
const INTEGRATION_TESTS: &str = "tests";

/// The modules of `tests/tests.rs` that hold tests (not the shared helpers).
fn integration_modules(root: &Path) -> Result<Vec<String>> {
    let path = root.join("tracer-cli/tests/tests.rs");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let modules: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .filter(|m| *m != "kernel_common")
        .map(str::to_string)
        .collect();
    // libtest filters by substring: `usdt::` would also select `postgres_usdt::x`.
    for m in &modules {
        if let Some(n) = modules.iter().find(|n| *n != m && n.ends_with(m.as_str())) {
            bail!(
                "test module {m} is a suffix of {n}: rename one in {}",
                path.display()
            );
        }
    }
    Ok(modules)
}

/// The cargo profile of the payloads: optimised, see the workspace Cargo.toml.
const PROFILE: &str = "vmtest";

/// The packages whose tests run in the VM.
const PACKAGES: [&str; 3] = ["tracer-cli", "tracer-runtime", "tracer-output"];

pub fn build(root: &Path, arch: Arch, out: &Path) -> Result<Payload> {
    ensure_rust_target(arch)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["test", "--no-run", "--profile", PROFILE])
        .args(PACKAGES.iter().flat_map(|p| ["-p", p]))
        .args(["--target", arch.rust_target()])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    if arch == Arch::Aarch64 {
        // GNU ld (through the cross gcc, installed for the C targets anyway), not rust-lld:
        // lld gives .data.rel.ro and .data two writable segments that share a page of the
        // file, so a USDT semaphore at the start of .data has two mappings, and the kernel
        // increments the one in the RELRO segment that the program never reads.
        let var = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER";
        if std::env::var_os(var).is_none() {
            cmd.env(var, arch.c_compiler());
        }
    }
    eprintln!(
        "vm-test: building {} and their tests for {}",
        PACKAGES.join(", "),
        arch.rust_target()
    );
    let output = cmd.output().context("cannot run cargo")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        bail!(
            "cargo test --no-run --target {} failed:\n{tail}",
            arch.rust_target()
        );
    }
    let mut tracer = None;
    let mut tests = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if !line.contains(r#""reason":"compiler-artifact""#) {
            continue;
        }
        let Some(exe) = json_str(line, "executable") else {
            continue;
        };
        let Some(target) = line
            .find(r#""target":{"#)
            .and_then(|i| json_str(&line[i..], "name"))
        else {
            continue;
        };
        // `"test":true` inside "profile" (the target object has a "test" key of its own).
        let is_test = line
            .find(r#""profile":{"#)
            .and_then(|i| line[i..].find('}').map(|j| &line[i..i + j]))
            .is_some_and(|p| p.contains(r#""test":true"#));
        if is_test && target == INTEGRATION_TESTS {
            let modules = integration_modules(root)?;
            let prefix = |m: &String| format!("{m}::");
            for module in &modules {
                tests.push(TestRun {
                    name: module.clone(),
                    exe: PathBuf::from(&exe),
                    filter: Some(prefix(module)),
                    others: modules
                        .iter()
                        .filter(|m| *m != module)
                        .map(prefix)
                        .collect(),
                });
            }
        } else if is_test {
            tests.push(TestRun {
                name: target,
                exe: PathBuf::from(exe),
                filter: None,
                others: Vec::new(),
            });
        } else if target == "tracer" {
            tracer = Some(PathBuf::from(exe));
        }
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    let tracer = tracer.context("cargo built no tracer binary")?;
    anyhow::ensure!(!tests.is_empty(), "cargo built no test executables");

    let (targets, libs, targets_skipped) =
        match build_targets(root, arch, out).and_then(|t| Ok((t, c_libs(arch)?))) {
            Ok((t, l)) => (t, l, None),
            Err(e) => (Vec::new(), Vec::new(), Some(format!("{e:#}"))),
        };
    let go_targets = super::go_targets::build(root, arch, out).unwrap_or_else(|e| {
        eprintln!("vm-test: no Go targets: {e:#}");
        Vec::new()
    });
    Ok(Payload {
        tracer,
        tests,
        targets,
        targets_skipped,
        go_targets,
        libs,
    })
}

/// The value of the first `"key":"…"` string in a line of cargo's JSON output.
fn json_str(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":\"");
    let start = line.find(&pat)? + pat.len();
    let mut s = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(s),
            '\\' => match chars.next()? {
                'n' => s.push('\n'),
                't' => s.push('\t'),
                c => s.push(c),
            },
            c => s.push(c),
        }
    }
    None
}

fn ensure_rust_target(arch: Arch) -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(()); // no rustup: cargo says what is missing
    };
    let installed = String::from_utf8_lossy(&out.stdout);
    if installed.lines().any(|l| l.trim() == arch.rust_target()) {
        return Ok(());
    }
    super::run(Command::new("rustup").args(["target", "add", arch.rust_target()]))
}

/// glibc's loader and libraries for the dynamically linked C targets, from the compiler's
/// sysroot, placed where Debian puts them (the tests expect frames such as `libc.so.6`syscall`).
fn c_libs(arch: Arch) -> Result<Vec<(String, PathBuf)>> {
    let (triplet, loader, loader_path) = match arch {
        Arch::X86_64 => (
            "x86_64-linux-gnu",
            "ld-linux-x86-64.so.2",
            "/lib64/ld-linux-x86-64.so.2",
        ),
        Arch::Aarch64 => (
            "aarch64-linux-gnu",
            "ld-linux-aarch64.so.1",
            "/lib/ld-linux-aarch64.so.1",
        ),
    };
    let find = |name: &str| -> Result<PathBuf> {
        let out = Command::new(arch.c_compiler())
            .arg(format!("-print-file-name={name}"))
            .output()?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        anyhow::ensure!(p.is_absolute(), "{} has no {name}", arch.c_compiler());
        // Copy the file itself, not a symbolic link to it.
        Ok(p.canonicalize()?)
    };
    let mut libs = vec![(loader_path.to_string(), find(loader)?)];
    for lib in ["libc.so.6", "libm.so.6"] {
        libs.push((format!("/lib/{triplet}/{lib}"), find(lib)?));
    }
    Ok(libs)
}

/// Each `tests/targets/*.c`, with the flags the tests use on the host (dynamically linked,
/// as on the host).
fn build_targets(root: &Path, arch: Arch, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    let cc = arch.c_compiler();
    if Command::new(cc).arg("--version").output().is_err() {
        bail!(
            "{cc} is not installed (apt-get install {})",
            arch.c_packages()
        );
    }
    let dir = out.join("targets");
    std::fs::create_dir_all(&dir)?;
    let include = sdt_include(out)?;
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(root.join("tests/targets"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    srcs.sort();
    let mut built = Vec::new();
    for src in srcs {
        let name = src.file_stem().unwrap().to_string_lossy().into_owned();
        let exe = dir.join(&name);
        let r = Command::new(cc)
            .args([
                "-O0",
                "-g",
                "-fno-omit-frame-pointer",
                "-pthread",
                "-isystem",
            ])
            .arg(&include)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .with_context(|| format!("cannot run {cc}"))?;
        if !r.status.success() {
            bail!(
                "{cc} {} failed:\n{}",
                src.display(),
                String::from_utf8_lossy(&r.stderr)
            );
        }
        built.push((name, exe));
    }
    Ok(built)
}

/// Where `<sys/sdt.h>` (USDT probes) is for the compilers of every arch. systemtap-sdt-dev
/// installs it under the host's multiarch directory, which a cross compiler does not search;
/// the header is plain macros and assembler, the same for every arch, so a copy of it (and of
/// the `sdt-config.h` it includes) in a private directory serves them all.
fn sdt_include(out: &Path) -> Result<PathBuf> {
    let src = sdt_dir().context("no sys/sdt.h (apt-get install systemtap-sdt-dev)")?;
    let dst = out.join("include");
    std::fs::create_dir_all(dst.join("sys"))?;
    for f in ["sdt.h", "sdt-config.h"] {
        let from = src.join("sys").join(f);
        if from.exists() {
            std::fs::copy(&from, dst.join("sys").join(f))
                .with_context(|| format!("cannot copy {}", from.display()))?;
        }
    }
    Ok(dst)
}

/// The include directory holding `sys/sdt.h`, if any.
pub fn sdt_dir() -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/include")];
    if let Ok(rd) = std::fs::read_dir("/usr/include") {
        dirs.extend(
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with("-linux-gnu")),
        );
    }
    dirs.into_iter().find(|d| d.join("sys/sdt.h").exists())
}
