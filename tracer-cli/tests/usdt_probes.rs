//! The USDT provider on the real kernel: a C target with stapsdt probes of known arguments
//! (tests/targets/usdt_probes.c, needs <sys/sdt.h> from systemtap-sdt-dev), python3.11's
//! probes (semaphore-gated) and libstdc++'s throw probes.

use crate::kernel_common::tracer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The target, built once (-O2, so arguments sit where optimized code keeps them).
fn target() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = tmp().join(format!("usdt_probes-{}", std::process::id()));
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/usdt_probes.c");
        let out = Command::new("cc")
            .args(["-O2", "-g", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cc failed (is systemtap-sdt-dev installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
    .clone()
}

/// A copy of the target with its own inode: probes attached by path to it see no other
/// test's processes (tests run in parallel).
fn private_copy(tag: &str) -> PathBuf {
    let p = tmp().join(format!("usdt_probes-{tag}-{}", std::process::id()));
    std::fs::copy(target(), &p).unwrap();
    p
}

/// Trace `cmd`; returns (tracer's output, the target's). tracer writes to a file of its own
/// (-o), since the target shares stdout and prints when it exits.
fn run(cmd: &str, script: &str) -> (String, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = tmp().join(format!("usdt-out-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let (target_out, err, code) =
        tracer(&["-q", "-o", file.to_str().unwrap(), "-c", cmd, "-n", script]);
    assert_eq!(code, 0, "{err}");
    let out = std::fs::read_to_string(&file).unwrap_or_default();
    (out, target_out)
}

#[test]
fn arguments_of_every_size_and_sign() {
    let (out, target_out) = run(
        &format!("{} 2", target().display()),
        r#"tgt$target:::args { printf("%d %d %u %d %x %s\n", arg0, arg1, arg2, arg3, arg4, copyinstr(arg5)); }"#,
    );
    // char, short, unsigned int, long, unsigned long long, char * — in -1@%al, -2@%dx, ...
    assert_eq!(
        out,
        "-5 -300 4000000000 -1234567890123 fedcba9876543210 hello0\n\
         -6 -301 4000000001 -1234567890124 fedcba9876543211 hello1\n\n"
    );
    assert_eq!(target_out, "gated 0\n");
}

#[test]
fn stack_and_constant_arguments() {
    // -8@8(%rsp) (user memory) and -4@$42; args[] is typed from the spec's size and sign.
    let (out, _) = run(
        &format!("{} 2", target().display()),
        r#"tgt$target:::mem { printf("%d\n", args[0]); } tgt$target:::konst { printf("%d\n", args[0]); }"#,
    );
    assert_eq!(out, "77\n42\n78\n42\n\n");
}

/// x86-64 only: aarch64 gcc addresses the global as `[x28, #:lo12:.LANCHOR1]`, an
/// assembler-local label that no symbol table keeps.
#[cfg(target_arch = "x86_64")]
#[test]
fn rip_relative_global_argument() {
    // -8@tgt_global(%rip): the symbol's address, taken relative to the probe's own ip.
    let (out, _) = run(
        &format!("{} 2", target().display()),
        r#"tgt$target:::global { printf("%x\n", arg0); }"#,
    );
    assert_eq!(out, "1122334455\n1122334455\n\n");
}

#[test]
fn each_inlined_copy_reads_its_own_argument_locations() {
    // site() is inlined twice into main (-4@$1 -8@%rax, -4@$3 -8@%rbx) and once into
    // other_site (-4@$2 -8@%rdx): two probes (main:site, other_site:site), three sites, each
    // its own program.
    let (out, _) = run(
        &format!("{} 3", target().display()),
        r#"tgt$target:::site { printf("%s %d %d\n", probefunc, arg0, arg1); }"#,
    );
    assert_eq!(
        out,
        "main 1 1000\nother_site 2 0\nmain 3 -1234567890123\n\
         main 1 1001\nother_site 2 3\nmain 3 -1234567890124\n\
         main 1 1002\nother_site 2 6\nmain 3 -1234567890125\n\n"
    );
    let (_, err, code) = tracer(&[
        "-c",
        &format!("{} 1", target().display()),
        "-n",
        "tgt$target:::site",
    ]);
    assert_eq!(code, 0, "{err}");
    // Two probes in the notice: main's two sites are one probe.
    assert!(err.contains("matched 2 probes"), "{err}");
}

#[test]
fn the_semaphore_is_set_only_while_the_probe_is_enabled() {
    // The target fires tgt:gated only when its semaphore is non-zero, and says how often.
    let cmd = format!("{} 4", target().display());
    let (out, target_out) = run(&cmd, r#"tgt$target:::gated { printf("arg %d\n", arg0); }"#);
    assert_eq!(out, "arg 0\narg 1\narg 2\narg 3\n\n");
    assert_eq!(target_out, "gated 4\n");
    let (out, target_out) = run(&cmd, "tgt$target:::konst { @ = count(); }");
    assert_eq!(out, "\n                4\n");
    assert_eq!(target_out, "gated 0\n");
}

#[test]
fn dtrace_writes_double_underscores_as_dashes() {
    let cmd = format!("{} 2", target().display());
    for name in ["probe-dash", "probe__dash"] {
        let (out, _) = run(
            &cmd,
            &format!(
                r#"tgt$target:::{name} {{ printf("%s:%s:%s\n", probeprov, probemod, probename); }}"#
            ),
        );
        let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "{out}");
        for l in lines {
            let f: Vec<&str> = l.split(':').collect();
            assert!(
                f[0].strip_prefix("tgt")
                    .is_some_and(|p| p.parse::<u32>().is_ok()),
                "{out}"
            );
            assert_eq!(
                f[1..],
                [
                    target().file_name().unwrap().to_str().unwrap(),
                    "probe-dash"
                ]
            );
        }
    }
}

#[test]
fn list_shows_the_provider_with_its_pid() {
    let cmd = format!("{} 1", target().display());
    let (out, err, code) = tracer(&["-l", "-c", &cmd, "-n", "tgt$target:::"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "   ID   PROVIDER            MODULE                          FUNCTION NAME"
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let mut names: Vec<(&str, &str)> = rows.iter().map(|r| (r[3], r[4])).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("main", "args"),
            ("main", "gated"),
            ("main", "global"),
            ("main", "konst"),
            ("main", "mem"),
            ("main", "probe-dash"),
            ("main", "site"),
            ("other_site", "site"),
        ]
    );
    for r in &rows {
        let pid = r[1].strip_prefix("tgt").expect("provider tgt<PID>");
        assert!(pid.parse::<u32>().is_ok(), "{r:?}");
        assert!(r[2].starts_with("usdt_probes"), "{r:?}");
    }
    // bpftrace's name for the file's probes (no process: provider without a pid).
    let (out, err, code) = tracer(&["-l", "-n", &format!("usdt:{}:tgt:site", target().display())]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let module = target().file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(rows.len(), 2, "{out}");
    for r in &rows {
        assert_eq!(r[1..3], ["tgt", module.as_str()], "{out}");
        assert_eq!(r[4], "site", "{out}");
    }
    // -lv: stapsdt gives sizes and signedness only.
    let (out, err, code) = tracer(&["-lv", "-c", &cmd, "-n", "tgt$target:::args"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "\t\targs[0]: char\n\t\targs[1]: short\n\t\targs[2]: unsigned int\n\t\targs[3]: long long\n\t\targs[4]: unsigned long long\n\t\targs[5]: unsigned long long\n"
        ),
        "{out}"
    );
}

#[test]
fn bpftrace_usdt_by_path_fires_in_processes_started_later() {
    // Attached by path with no pid: processes that start after tracer attached fire.
    use std::io::{BufRead, BufReader, Read};
    let bin = private_copy("path");
    let script = format!(
        r#"BEGIN {{ printf("ready\n"); }} usdt:{}:tgt:konst {{ @ = count(); }} usdt:{}:site {{ @s = sum(arg1); }} tick-3s {{ exit(0); }}"#,
        bin.display(),
        bin.display()
    );
    let mut t = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args(["-q", "-n", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(t.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n");
    for _ in 0..2 {
        let ok = Command::new(&bin)
            .arg("3")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(t.wait().unwrap().success());
    // 2 runs: 6 konst; site: 2 × (1000+1001+1002 + 0+3+6 + l for i = 0..2)
    let site: i64 = 2 * (3012 + (0..3).map(|i| -1234567890123i64 - i).sum::<i64>());
    assert_eq!(rest, format!("\n                6\n{site:>17}\n"));
}

/// Runs the copy in the background for a few seconds, so the provider glob finds it.
struct Background(Child);
impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn provider_globs_find_running_binaries_and_attach_by_path() {
    let bin = private_copy("glob");
    let _bg = Background(
        Command::new(&bin)
            .args(["100", "100"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let module = bin.file_name().unwrap().to_str().unwrap().to_string();
    let (out, err, code) = tracer(&["-l", "-n", &format!("tgt*:{module}::konst")]);
    assert_eq!(code, 0, "{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[1..], ["tgt", module.as_str(), "main", "konst"], "{out}");
    // The -c process starts after tracer found the file: it fires too.
    let (out, _) = run(
        &format!("{} 3", bin.display()),
        &format!("tgt*:{module}::konst /pid == $target/ {{ @ = count(); }}"),
    );
    assert_eq!(out, "\n                3\n");
}

#[test]
fn errors_name_the_fix() {
    let cmd = format!("{} 1", target().display());
    let (_, err, code) = tracer(&["-c", &cmd, "-n", "nosuch$target:::x"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not match any probes"), "{err}");
    let (_, err, code) = tracer(&["-c", &cmd, "-n", "tgt$target:::nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "does not match any probes; its USDT probes are: args, gated, global, konst, mem, probe-dash, site"
        ),
        "{err}"
    );
    let (_, err, code) = tracer(&["-n", "tgt$target:::konst"]);
    assert_eq!(code, 1);
    assert!(err.contains("add -c 'command' or -p PID"), "{err}");
    let (_, err, code) = tracer(&["-n", "nosuchprov:::konst"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("does not match any probes") && err.contains("usdt:/path/to/binary"),
        "{err}"
    );
    // -Z: matching nothing is allowed.
    let (_, err, code) = tracer(&[
        "-q",
        "-Z",
        "-n",
        "nosuchprov:::konst { } tick-1ms { exit(0); }",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, err, code) = tracer(&["-n", "usdt:/no/such/file:p:n"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/no/such/file: No such file or directory"),
        "{err}"
    );
}

/// python3.11 from the distribution, built with --with-dtrace (pyenv's builds are not).
fn python() -> Option<PathBuf> {
    let p = Path::new("/usr/bin/python3.11");
    let notes = Command::new("readelf").arg("-n").arg(p).output().ok()?;
    if String::from_utf8_lossy(&notes.stdout).contains("function__entry") {
        Some(p.to_path_buf())
    } else {
        None
    }
}

#[test]
fn python_function_probes_with_semaphores() {
    let Some(py) = python() else {
        eprintln!("skipped: /usr/bin/python3.11 with USDT probes is not installed (apt-get install python3.11)");
        return;
    };
    let script = tmp().join(format!("foo-{}.py", std::process::id()));
    std::fs::write(&script, "def foo():\n    pass\nfoo()\n").unwrap();
    // function__entry and function__return fire only while their semaphores are set.
    // (3.11 fires function__entry only where C code starts a frame, not for calls the
    // interpreter inlines, so foo shows in function-return.)
    let (out, _) = run(
        &format!("{} {}", py.display(), script.display()),
        r#"python$target:::function-return /copyinstr(arg1) == "foo"/ { printf("%s %s %d\n", basename(copyinstr(arg0)), copyinstr(arg1), arg2); }
           python$target:::function-entry { @e = count(); }
           END { printa("entries %@d\n", @e); }"#,
    );
    let name = script.file_name().unwrap().to_str().unwrap();
    let mut lines = out.lines().filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some(format!("{name} foo 2").as_str()),
        "{out}"
    );
    let entries: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("entries "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(entries > 0, "{out}");
}

#[test]
fn libstdcxx_throw_and_catch() {
    let src = tmp().join(format!("throw-{}.cc", std::process::id()));
    std::fs::write(
        &src,
        "#include <stdexcept>\n#include <cstdio>\nint main() {\n  int n = 0;\n  for (int i = 0; i < 3; i++) {\n    try { throw std::runtime_error(\"boom\"); } catch (const std::exception &) { n++; }\n  }\n  std::printf(\"caught %d\\n\", n);\n}\n",
    )
    .unwrap();
    let bin = src.with_extension("");
    match Command::new("g++").arg("-o").arg(&bin).arg(&src).status() {
        Ok(s) if s.success() => {}
        _ => {
            eprintln!("skipped: g++ is not installed (apt-get install g++)");
            return;
        }
    }
    // libstdc++ is not mapped yet when the -c process is held at its exec: its probes are
    // found through the executable's DT_NEEDED.
    let (out, target_out) = run(
        &bin.display().to_string(),
        "libstdcxx$target:::throw, libstdcxx$target:::catch { @[probename] = count(); }",
    );
    assert_eq!(target_out, "caught 3\n");
    assert_eq!(out, "\n  catch                                                             3\n  throw                                                             3\n");
}
