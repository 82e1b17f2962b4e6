//! The pid provider (uprobes) and bpftrace's uprobe names, on a C program with known calls.

use crate::kernel_common::tracer;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The target, built once for all tests (they run in parallel).
fn target() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pid_calls-{}", std::process::id()));
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/pid_calls.c");
        let ok = Command::new("cc")
            .args(["-O0", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cc failed");
        bin
    })
    .clone()
}

#[test]
fn entry_args_and_return_values() {
    let cmd = format!("{} 7", target().display());
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "pid$target:a.out:work:entry { @c = count(); @a = sum(arg0); } pid$target:a.out:work:return { @r = sum(arg1); }",
    ]);
    assert_eq!(code, 0, "{err}");
    // The target prints its own sum first; then: 7 calls, args 0..6 sum to 21, returns 2i+1
    // sum to 49.
    assert_eq!(
        out, "97\n\n                7\n               21\n               49\n",
        "{err}"
    );
}

#[test]
fn function_globs_and_probefunc() {
    let cmd = format!("{} 3", target().display());
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "pid$target:a.out:[wo]*:entry { @[probefunc] = count(); }",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, vec![vec!["other", "1"], vec!["work", "3"]], "{out}");
}

#[test]
fn a_library_of_a_command_held_at_exec() {
    let cmd = format!("{} 1", target().display());
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "pid$target:libc.so.6:printf:entry { printf(\"printf called\\n\"); }",
    ]);
    assert_eq!(code, 0, "{err}");
    // The target's own output shares stdout with tracer's, in either order.
    assert!(out.lines().any(|l| l == "printf called"), "{out}");
}

#[test]
fn bpftrace_uprobe_and_uretprobe_names() {
    let bin = target();
    let cmd = format!("{} 4", bin.display());
    let d = format!(
        "uprobe:{0}:work {{ @ = count(); }} uretprobe:{0}:work {{ @r = sum(arg1); }}",
        bin.display()
    );
    let (out, err, code) = tracer(&["-q", "-c", &cmd, "-n", &d]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "31\n\n                4\n               16\n", "{err}");
}

#[test]
fn pid_provider_errors() {
    let (_, err, code) = tracer(&["-q", "-n", "pid$target::work:entry { }"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "$target is used, but no target process was given: add -c 'command' or -p PID"
        ),
        "{err}"
    );
    let (_, err, code) = tracer(&["-q", "-n", "uprobe:/nonexistent/bin:f { }"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/bin: No such file or directory"),
        "{err}"
    );
}

#[test]
fn probes_sharing_one_program_name_their_own_site() {
    // Every a.out function's entry runs the same clause: one program for all of them, with
    // probefunc, id and the default output row naming the site that fired.
    let cmd = format!("{} 2", target().display());
    let (out, err, code) = tracer(&[
        "-c",
        &cmd,
        "-n",
        "pid$target:a.out::entry { printf(\"<%s %d>\", probefunc, id); }",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.contains('<'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    // CPU ID FUNCTION:NAME <func id>
    let mut funcs = Vec::new();
    for r in &rows {
        let func = r[2].strip_suffix(":entry").unwrap();
        assert_eq!(r[3], format!("<{func}"), "{out}");
        assert_eq!(r[4], format!("{}>", r[1]), "{out}");
        funcs.push(func);
    }
    assert_eq!(funcs.iter().filter(|f| **f == "work").count(), 2, "{out}");
    assert_eq!(funcs.iter().filter(|f| **f == "main").count(), 1, "{out}");
    let mut ids: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    ids.sort();
    ids.dedup();
    assert!(ids.len() >= 3, "distinct probes: {out}");
    // Each row's ID is the one -l lists for that function (of another run of the target:
    // the provider's pid differs, the IDs do not).
    let (listed, err, code) = tracer(&["-l", "-c", &cmd, "-n", "pid$target:a.out::entry"]);
    assert_eq!(code, 0, "{err}");
    for (r, func) in rows.iter().zip(&funcs) {
        let id = listed
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|l| l.len() == 5 && l[3] == *func && l[4] == "entry")
            .map(|l| l[0]);
        assert_eq!(id, Some(r[1]), "{func}: row ID vs -l\n{listed}\n{out}");
    }
}

/// The offset of the first `ret` in `func`, from `objdump -d` (None without objdump).
fn ret_offset(bin: &std::path::Path, func: &str) -> Option<u64> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(bin)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let head = format!("<{func}>:");
    let mut lines = text.lines().skip_while(|l| !l.ends_with(&head));
    let start = u64::from_str_radix(lines.next()?.split_whitespace().next()?, 16).ok()?;
    lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let (addr, insn) = l.split_once(':')?;
        insn.trim()
            .starts_with("ret")
            .then(|| u64::from_str_radix(addr.trim(), 16).ok())?
            .map(|a| a - start)
    })
}

#[test]
fn offset_probes_and_uregs() {
    let bin = target();
    let Some(off) = ret_offset(&bin, "work") else {
        eprintln!("skipped: objdump is not installed");
        return;
    };
    let cmd = format!("{} 3", bin.display());
    // At work's `ret`, the return register holds 2i+1; the pc is the probed instruction.
    #[cfg(target_arch = "x86_64")]
    let (ret, pc) = ("R_RAX", "R_PC");
    #[cfg(target_arch = "aarch64")]
    let (ret, pc) = ("R_X0", "R_PC");
    let d = format!(
        "pid$target:a.out:work:{off:x} {{ printf(\"%s %s %d\\n\", probefunc, probename, uregs[{ret}] & 0xffffffff); }}
         pid$target:a.out:work:entry /uregs[{pc}] == 0/ {{ printf(\"no pc\\n\"); }}"
    );
    let (out, err, code) = tracer(&["-q", "-c", &cmd, "-n", &d]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("no pc"), "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("work")).collect();
    let name = format!("{off:x}");
    assert_eq!(
        lines,
        [1, 3, 5].map(|v| format!("work {name} {v}")),
        "{out}"
    );

    let (_, err, code) = tracer(&["-q", "-c", &cmd, "-n", "pid$target:a.out:work:fff0 {}"]);
    assert_ne!(code, 0);
    assert!(err.contains("past the end of work"), "{err}");
    let (_, err, code) = tracer(&["-q", "-n", "syscall::read:entry { trace(uregs[R_PC]); }"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("uregs[] is available in pid and USDT probes"),
        "{err}"
    );
    let (_, err, code) = tracer(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "pid$target:a.out:work:entry { trace(uregs[R_NOPE]); }",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown register R_NOPE"), "{err}");
}

#[test]
fn cxx_names_are_mangled_in_probefunc_and_demangled_in_stacks() {
    // As DTrace: the probe is named by the symbol (`_ZN2ns1K1fEi`), while ustack(), ufunc()
    // and usym() print the demangled name.
    let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cxx_calls-{}", std::process::id()));
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/cxx_calls.cc");
    match Command::new("c++")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
    {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipped: no C++ compiler ({other:?})");
            return;
        }
    }
    let cmd = bin.display().to_string();
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        &cmd,
        "-n",
        "pid$target:a.out:*K1f*:entry { @f[probefunc] = count(); @s[ustack(2)] = count(); @u[ufunc(uregs[R_PC])] = count(); }",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["_ZN2ns1K1fEi", "3"]),
        "{out}"
    );
    let name = bin.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        out.contains(&format!("{name}`ns::K::f(int)\n")),
        "ustack: {out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == [format!("{name}`ns::K::f(int)").as_str(), "3"]),
        "ufunc: {out}"
    );
}

#[test]
fn thousands_of_uprobes_attach_and_detach_fast() {
    // Every function of python3.11 (about 1,500 in its .dynsym): one program, one
    // uprobe_multi link where the kernel has it. Attached one perf event at a time, the
    // detach alone took 160 s here.
    let python = std::path::Path::new("/usr/bin/python3.11");
    if !python.exists() {
        eprintln!("skipped: /usr/bin/python3.11 is not installed");
        return;
    }
    let start = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args([
            "-c",
            "/usr/bin/python3.11 -c pass",
            "-n",
            "pid$target:a.out::entry { @ = count(); } END { printa(\"calls %@d\\n\", @); }",
        ])
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let matched: usize = stderr
        .split("matched ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(matched >= 1000, "{stderr}");
    let calls: u64 = stdout
        .lines()
        .find_map(|l| l.split("calls ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(calls > 1000, "{stdout}");
    assert!(
        elapsed < std::time::Duration::from_secs(20),
        "{matched} probes took {elapsed:?}"
    );
}

#[test]
fn rust_names_are_mangled_in_probefunc_and_demangled_in_stacks() {
    let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rust_calls-{}", std::process::id()));
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/rust_calls.rs");
    let built = Command::new("rustc")
        .args([
            "-O",
            "-C",
            "panic=abort",
            "--crate-name",
            "rust_calls",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .status();
    match built {
        Ok(s) => assert!(s.success(), "rustc failed"),
        // The VM guests have no Rust toolchain.
        Err(e) => {
            eprintln!("skipped: no rustc ({e})");
            return;
        }
    }
    let (out, err, code) = tracer(&[
        "-q",
        "-c",
        &bin.display().to_string(),
        "-n",
        "pid$target:a.out:*10rust_calls4work*:entry { @f[probefunc] = count(); @s[ustack(1)] = count(); }",
    ]);
    assert_eq!(code, 0, "{err}");
    // Legacy mangling: _ZN10rust_calls4work17h<hash>E.
    assert!(
        out.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 2 && w[0].starts_with("_ZN10rust_calls4work17h") && w[1] == "3"
        }),
        "{out}"
    );
    let name = bin.file_name().unwrap().to_string_lossy().to_string();
    assert!(out.contains(&format!("{name}`rust_calls::work\n")), "{out}");
}

#[test]
fn stripped_libraries_use_their_debug_files() {
    // Debian's libc.so.6 keeps only .dynsym; its static functions are in libc6-dbg's
    // detached debug file, found by build ID.
    if !std::path::Path::new("/usr/lib/debug/.build-id").is_dir() {
        eprintln!("skipped: no detached debug files (apt-get install libc6-dbg)");
        return;
    }
    let (out, err, code) = tracer(&[
        "-q",
        "-n",
        "pid$target:libc.so.6:__libc_start_call_main:entry { printf(\"%s\\n\", probefunc); }",
        "-c",
        &target().display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    // The target prints its own result after the probe's line.
    let hits: Vec<&str> = out.lines().filter(|l| l.starts_with("__libc")).collect();
    assert_eq!(hits, ["__libc_start_call_main"], "{out}\n{err}");
}

#[test]
fn listing_pid_probes_of_a_command() {
    // -l with -c lists the functions of the executable and of the libraries the dynamic
    // linker mapped before the entry point: one row per probe, entry and return.
    let cmd = format!("{} 1", target().display());
    let (out, err, code) = tracer(&["-l", "-c", &cmd, "-n", "pid$target::work:"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[2], r[3], r[4])).collect();
    assert_eq!(
        names,
        [("a.out", "work", "entry"), ("a.out", "work", "return")],
        "{out}"
    );
    assert!(rows.iter().all(|r| r[1].starts_with("pid")), "{out}");
    let (out, err, code) = tracer(&["-l", "-c", &cmd, "-n", "pid$target:libc.so.6:malloc:entry"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("libc.so.6") && out.contains("malloc"), "{out}");
}
