//! The scripts of `examples/runtimes/`, each run against its real runtime: a Go program, a
//! JVM, Node.js and CPython 3.11. A runtime that is not installed (the VM matrix has none)
//! makes its test print why and pass; CI installs them all (`.ci/run`).

use crate::kernel_common::{go_target, run, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/runtimes")
        .join(name)
        .display()
        .to_string()
}

fn runtime_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/targets/runtimes")
        .join(name)
}

/// Whether `program` runs; if not, says the test is skipped and why.
fn installed(program: &str, package: &str) -> bool {
    let ok = Command::new(program)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty());
    if !ok {
        eprintln!("skipped: {program} is not installed (apt-get install {package})");
    }
    ok
}

#[test]
fn go_latency_times_each_handler_call() {
    let Some(bin) = go_target(&[]) else { return };
    let cmd = format!("{} 12", bin.display());
    // The script names amd64's goroutine register; arm64 keeps g in X28, as its comment says.
    let script = scratch().join("go_latency.d");
    let text = std::fs::read_to_string(example("go_latency.d")).unwrap();
    let text = if cfg!(target_arch = "aarch64") {
        text.replace("uregs[R_R14]", "uregs[R_X28]")
    } else {
        text
    };
    std::fs::write(&script, text).unwrap();
    let out = run(&["-s", &script.display().to_string(), "-c", &cmd]);
    assert_eq!(out.code(), 0, "{out}");
    // The program's own output, then one distribution per function; main.handle's holds
    // exactly its 12 calls.
    assert!(out.stdout.contains("done"), "{out}");
    let handle = out
        .stdout
        .split("\n\n")
        .find(|block| block.lines().next().map(str::trim) == Some("main.handle"))
        .unwrap_or_else(|| panic!("no distribution for main.handle\n{out}"));
    let total: i64 = handle
        .lines()
        .filter(|l| l.contains('|'))
        .filter_map(|l| l.split_whitespace().last()?.parse::<i64>().ok())
        .sum();
    assert_eq!(total, 12, "{out}");
    assert!(!out.stderr.contains("fatal error"), "{out}");
}

#[test]
fn java_gc_counts_collections_in_the_dlopened_jvm() {
    if !installed("javac", "openjdk-17-jdk-headless") {
        return;
    }
    let classes = scratch().join("java-classes");
    std::fs::create_dir_all(&classes).unwrap();
    let built = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(runtime_file("GcLoop.java"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let cmd = format!("java -Xmx64m -cp {} GcLoop 4", classes.display());
    let out = run(&["-s", &example("java_gc.d"), "-c", &cmd]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("done"), "{out}");
    // System.gc() is a full collection in every collector: at least the 4 it asked for.
    let full: i64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("collections: full"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no full collections\n{out}"));
    assert!(full >= 4, "{out}");
    let loaded: i64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("classes loaded: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no classes loaded\n{out}"));
    assert!(loaded > 100, "a JVM loads hundreds of classes\n{out}");
}

#[test]
fn node_profile_samples_the_program() {
    if !installed("node", "nodejs") {
        return;
    }
    // --perf-basic-prof also writes V8's log, to the working directory unless told.
    let cmd = format!(
        "node --perf-basic-prof --no-logfile-per-isolate --logfile={} {} 2",
        scratch().join("v8.log").display(),
        runtime_file("busy.js").display()
    );
    let out = run(&["-s", &example("node_profile.d"), "-c", &cmd]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("done"), "{out}");
    // The hot JavaScript function is named from node's perf map (`JS:*hotLoop file:2:17`,
    // `*` compiled, `~` interpreted).
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim().starts_with("JS:*hotLoop ") || l.trim().starts_with("JS:~hotLoop ")),
        "{out}"
    );
    // At 997 Hz for 2 s, the stacks hold well over 100 samples, most of them in node.
    let samples: i64 = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().parse::<i64>().ok())
        .sum();
    assert!(samples > 100, "{out}");
}

#[test]
fn python_calls_sees_imports_and_collections() {
    let python = Path::new("/usr/bin/python3.11");
    if !python.exists() {
        eprintln!("skipped: /usr/bin/python3.11 is not installed (apt-get install python3.11)");
        return;
    }
    let cmd = format!(
        "{} {} 4",
        python.display(),
        runtime_file("calls.py").display()
    );
    let out = run(&["-s", &example("python_calls.d"), "-c", &cmd]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("done"), "{out}");
    // calls.py imports gc and collects once.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some("gc")),
        "{out}"
    );
    let collections: i64 = out
        .stdout
        .split("garbage collections (us):")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains('|'))
        .filter_map(|l| l.split_whitespace().last()?.parse::<i64>().ok())
        .sum();
    assert!(collections >= 1, "{out}");
}
