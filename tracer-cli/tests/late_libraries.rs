//! Libraries a traced process maps at start-up and later, on the real kernel (part of issue
//! 11): a `-c` process is held until ld.so mapped what it needs, so `pid$target::malloc:entry`
//! resolves; `-Z` descriptions that match nothing yet are enabled when a dlopen()ed library
//! brings their probes, before any of its code runs; a Java program's hotspot probes (in
//! libjvm.so, which the `java` launcher dlopen()s) fire.

use crate::kernel_common::{run, scratch_file, target, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The library the dlopen target loads: late_work(x) returns 2x, with a USDT probe
/// `latelib:work(x)` when <sys/sdt.h> is there. None when cc cannot build it.
fn late_library() -> Option<(PathBuf, bool)> {
    static LIB: OnceLock<Option<(PathBuf, bool)>> = OnceLock::new();
    LIB.get_or_init(|| {
        let build = |src: &str, usdt: bool| {
            let c = scratch_file("liblate.c");
            std::fs::write(&c, src).ok()?;
            let so = c.with_file_name(format!("liblate{}.so", if usdt { "" } else { "-plain" }));
            let ok = Command::new("cc")
                .args(["-shared", "-fPIC", "-O0", "-g", "-o"])
                .arg(&so)
                .arg(&c)
                .output()
                .ok()?
                .status
                .success();
            ok.then_some((so, usdt))
        };
        build(
            "#include <sys/sdt.h>\nint late_work(int x) { DTRACE_PROBE1(latelib, work, x); return 2 * x; }\n",
            true,
        )
        .or_else(|| build("int late_work(int x) { return 2 * x; }\n", false))
    })
    .clone()
}

fn have_cc() -> bool {
    Command::new("cc").arg("--version").output().is_ok()
}

/// tracer's output lines `name value` (of `printa("name %@d\n", @a)`), as a map.
fn values(out: &Output) -> std::collections::HashMap<String, u64> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn probes_of_a_dlopened_library_see_every_call() {
    if !have_cc() {
        eprintln!("skipped: cc is not installed");
        return;
    }
    let Some((lib, usdt)) = late_library() else {
        // The VM's `cc` only copies prebuilt targets.
        eprintln!("skipped: cc cannot build a shared library here");
        return;
    };
    let bin = target("dlopen_late");
    let n = 37;
    let mut script = String::from(
        "pid$target:liblate*.so:late_work:entry { @pid = count(); }
         pid$target:liblate*.so:late_work:return { @ret = sum(arg1); }",
    );
    if usdt {
        script.push_str(" latelib$target:::work { @usdt = count(); @args = sum(arg0); }");
    }
    script.push_str(" END { printa(\"pid %@d\\n\", @pid); printa(\"ret %@d\\n\", @ret);");
    if usdt {
        script.push_str(" printa(\"usdt %@d\\n\", @usdt); printa(\"args %@d\\n\", @args);");
    }
    script.push_str(" }");
    let cmd = format!("{} {} {n}", bin.display(), lib.display());
    let out = run(&["-Z", "-q", "-n", &script, "-c", &cmd]).ok();
    assert!(
        out.stderr.contains("has exited") || out.stderr.is_empty(),
        "{out}"
    );
    assert!(!out.stderr.contains("exited with status"), "{out}");
    let v = values(&out);
    // Every call, the first ones right after dlopen() returned included.
    assert_eq!(v.get("pid"), Some(&n), "{out}");
    // sum(2i) for i < n.
    assert_eq!(v.get("ret"), Some(&(n * (n - 1))), "{out}");
    if usdt {
        assert_eq!(v.get("usdt"), Some(&n), "{out}");
        assert_eq!(v.get("args"), Some(&(n * (n - 1) / 2)), "{out}");
    } else {
        eprintln!("USDT part skipped: <sys/sdt.h> is missing (systemtap-sdt-dev)");
    }
}

#[test]
fn grabbed_process_gets_the_probes_of_a_library_it_loads_later() {
    if !have_cc() {
        eprintln!("skipped: cc is not installed");
        return;
    }
    let Some((lib, _)) = late_library() else {
        eprintln!("skipped: cc cannot build a shared library here");
        return;
    };
    let n = 11;
    let lib_arg = lib.to_string_lossy().into_owned();
    // The process waits for a file before its dlopen(); the test creates it once tracer's
    // BEGIN has run, so the probes on ld.so are attached.
    let go = crate::kernel_common::scratch_file("dlopen-go");
    let go_arg = go.to_string_lossy().into_owned();
    let mut p = crate::kernel_common::Proc::start(
        &target("dlopen_late"),
        &[&lib_arg, &n.to_string(), &go_arg],
    );
    let pid = p.pid().to_string();
    let t = crate::kernel_common::spawn(&[
        "-Z",
        "-q",
        "-n",
        "BEGIN { printf(\"ready\\n\"); } \
         pid$target:liblate*.so:late_work:entry { @pid = count(); } \
         END { printa(\"pid %@d\\n\", @pid); }",
        "-p",
        &pid,
    ]);
    t.wait_line("ready");
    std::fs::write(&go, "").unwrap();
    let out = t.finish(crate::kernel_common::RUN_TIMEOUT).ok();
    assert!(
        p.wait(Duration::from_secs(20)).success(),
        "the target failed"
    );
    assert_eq!(values(&out).get("pid"), Some(&n), "{out}");
}

#[test]
fn malloc_of_a_created_process_is_found_in_libc() {
    let bin = target("mallocs");
    let n = 23;
    let cmd = format!("{} {n}", bin.display());
    let script = "pid$target::malloc:entry /arg0 >= 5000 && arg0 < 6000/ { @m = count(); }
                  END { printa(\"mallocs %@d\\n\", @m); }";
    let out = run(&["-q", "-n", script, "-c", &cmd]).ok();
    assert_eq!(values(&out).get("mallocs"), Some(&n), "{out}");
    // Status 7: the entry point's breakpoint was left in.
    assert!(!out.stderr.contains("exited with status"), "{out}");
}

#[test]
fn a_static_program_is_still_held_at_its_exec() {
    if !have_cc() {
        eprintln!("skipped: cc is not installed");
        return;
    }
    let bin = scratch_file("mallocs-static");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/mallocs.c");
    let built = Command::new("cc")
        .args(["-static", "-O0", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .is_ok_and(|o| o.status.success());
    // The VM's `cc` copies the prebuilt, dynamically linked target whatever the flags.
    let has_interpreter = std::fs::read(&bin)
        .map(|b| b.windows(8).take(8192).any(|w| w == b"/ld-linu"))
        .unwrap_or(true);
    if !built || has_interpreter {
        eprintln!("skipped: cc cannot link statically here (no libc.a)");
        return;
    }
    let n = 9;
    let cmd = format!("{} {n}", bin.display());
    let script = "pid$target::malloc:entry /arg0 >= 5000 && arg0 < 6000/ { @m = count(); }
                  END { printa(\"mallocs %@d\\n\", @m); }";
    let out = run(&["-q", "-n", script, "-c", &cmd]).ok();
    assert_eq!(values(&out).get("mallocs"), Some(&n), "{out}");
    // It loads no library: a pending description says why it will not fire, and the run
    // goes on.
    let pending = format!("{script} pid$target:libnever.so::entry {{ @n = count(); }}");
    let out = run(&["-Z", "-q", "-n", &pending, "-c", &cmd]).ok();
    assert_eq!(values(&out).get("mallocs"), Some(&n), "{out}");
    assert!(
        out.stderr.contains("libnever.so::entry cannot be enabled")
            && out.stderr.contains("statically linked"),
        "{out}"
    );
}

#[test]
fn a_library_that_never_loads_leaves_its_probes_unfired() {
    let bin = target("mallocs");
    let cmd = format!("{} 3", bin.display());
    let out = run(&[
        "-Z",
        "-q",
        "-n",
        "pid$target:libnever.so:f:entry { @n = count(); } never$target:::probe { @u = count(); }
         END { printa(\"n %@d\\n\", @n); printa(\"u %@d\\n\", @u); printf(\"end\\n\"); }",
        "-c",
        &cmd,
    ])
    .ok();
    // The aggregations exist (printa compiles) and are empty.
    assert_eq!(crate::kernel_common::body(&out), ["end"], "{out}");
    assert!(!out.stderr.contains("failed"), "{out}");
    // Without -Z it is an error naming the description.
    let out = run(&[
        "-n",
        "pid$target:libnever.so:f:entry { @n = count(); }",
        "-c",
        &cmd,
    ]);
    assert_ne!(out.code(), 0, "{out}");
    assert!(out.stderr.contains("does not match any probes"), "{out}");
}

/// A class of the test's own, compiled into scratch; None (skip) without a JDK.
fn java_class() -> Option<PathBuf> {
    let has = |tool: &str| Command::new(tool).arg("-version").output().is_ok();
    if !has("java") || !has("javac") {
        return None;
    }
    let dir = scratch_file("java");
    std::fs::create_dir_all(&dir).ok()?;
    let src = dir.join("LateHello.java");
    std::fs::write(
        &src,
        "public class LateHello {
             static int tick(int i) { return 2 * i; }
             public static void main(String[] args) {
                 int n = Integer.parseInt(args[0]);
                 long sum = 0;
                 for (int i = 0; i < n; i++) System.gc();
                 for (int i = 0; i < 100 * n; i++) sum += tick(i);
                 System.out.println(sum);
             }
         }\n",
    )
    .ok()?;
    let ok = Command::new("javac")
        .arg("-d")
        .arg(&dir)
        .arg(&src)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "javac LateHello.java failed");
    Some(dir)
}

#[test]
fn hotspot_probes_of_a_java_program() {
    let Some(dir) = java_class() else {
        eprintln!("skipped: java is not installed");
        return;
    };
    let n = 5;
    let cmd = format!("java -cp {} LateHello {n}", dir.display());
    let script = "hotspot$target:::gc-begin { @gc = count(); }
                  hotspot$target:::class-loaded { @cl[copyinstr(arg0, arg1)] = count(); }
                  END { printa(\"gc %@d\\n\", @gc); printa(\"class %s %@d\\n\", @cl); }";
    let out = run(&["-Z", "-q", "-n", script, "-c", &cmd]).ok();
    let gc = values(&out).get("gc").copied().unwrap_or(0);
    assert!(
        gc >= n,
        "gc-begin fired {gc} times, System.gc() ran {n} times\n{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("class LateHello ")),
        "class-loaded did not name LateHello\n{out}"
    );
    assert!(!out.stderr.contains("failed"), "{out}");
}

#[test]
fn hotspot_method_probes_with_extended_probes() {
    let Some(dir) = java_class() else {
        eprintln!("skipped: java is not installed");
        return;
    };
    // method-entry/return fire only with -XX:+ExtendedDTraceProbes; their strings are
    // (pointer, length): class, method, signature.
    let n = 3;
    let cmd = format!(
        "java -XX:+ExtendedDTraceProbes -cp {} LateHello {n}",
        dir.display()
    );
    let script = "hotspot$target:::method-entry /copyinstr(arg3, arg4) == \"tick\"/ {
                      @calls[copyinstr(arg1, arg2), copyinstr(arg5, arg6)] = count(); }
                  hotspot$target:::method-return /copyinstr(arg3, arg4) == \"tick\"/ {
                      @returns = count(); }
                  END { printa(\"entry %s %s %@d\\n\", @calls); printa(\"return %@d\\n\", @returns); }";
    let out = run(&["-Z", "-q", "-n", script, "-c", &cmd]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"entry LateHello (I)I 300"), "{out}");
    assert!(lines.contains(&"return 300"), "{out}");
}
