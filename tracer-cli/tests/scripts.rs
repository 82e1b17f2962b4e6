//! Runs every D script in `tests/scripts/` against the real kernel and compares what tracer
//! prints with the expected files next to it, byte for byte.
//!
//! For `NAME.d`:
//! - `NAME.out`: expected stdout (required);
//! - `NAME.err`: expected stderr (optional; otherwise stderr is not compared);
//! - a first-line comment `/* tracer: ARGS */` gives extra command-line arguments, in which
//!   `$SCRIPT` stands for the script path; `/* status: N */` on the next line gives the expected
//!   exit status (default 0).
//!
//! Must run as root (it loads eBPF programs). tracer runs under `taskset -c 0`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scripts")
}

fn header(text: &str, key: &str) -> Option<String> {
    text.lines().take(3).find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix("/*")?.strip_suffix("*/")?.trim();
        inner.strip_prefix(key).map(|v| v.trim().to_string())
    })
}

fn run_one(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    // Relative to the scripts directory (the working directory), so messages are stable.
    let script = path.file_name().unwrap().to_str().unwrap();
    let extra = header(&text, "tracer:").unwrap_or_default();
    let status: i32 = header(&text, "status:")
        .map(|s| s.parse().unwrap())
        .unwrap_or(0);
    let mut args: Vec<String> = Vec::new();
    if !extra.contains("$SCRIPT") {
        args.extend(["-s".to_string(), script.to_string()]);
    }
    for a in tracer_runtime::target::split_command(&extra).expect("the tracer: header's arguments")
    {
        args.push(a.replace("$SCRIPT", script));
    }
    // Pinned to CPU 0 so that the CPU column of BEGIN/END rows is stable.
    let out = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_tracer")])
        .args(&args)
        .current_dir(scripts_dir())
        .output()
        .map_err(|e| format!("cannot run tracer: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    let expect_out = std::fs::read_to_string(path.with_extension("out"))
        .map_err(|_| "missing .out file".to_string())?;
    if stdout != expect_out {
        problems.push(format!(
            "stdout differs:\n--- expected\n{expect_out}\n--- got\n{stdout}\n--- stderr\n{stderr}"
        ));
    }
    if let Ok(expect_err) = std::fs::read_to_string(path.with_extension("err")) {
        if stderr != expect_err {
            problems.push(format!(
                "stderr differs:\n--- expected\n{expect_err}\n--- got\n{stderr}"
            ));
        }
    }
    if out.status.code() != Some(status) {
        problems.push(format!(
            "exit status {:?}, expected {status}; stderr:\n{stderr}",
            out.status.code()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn d_scripts_print_what_dtrace_prints() {
    let filter = std::env::var("TRACER_TEST_FILTER").unwrap_or_default();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "d"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts found");
    let mut failures = Vec::new();
    for p in &paths {
        match run_one(p) {
            Ok(()) => eprintln!("ok   {}", p.file_name().unwrap().to_string_lossy()),
            Err(e) => {
                eprintln!("FAIL {}", p.file_name().unwrap().to_string_lossy());
                failures.push(format!("== {}\n{e}", p.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scripts failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}
