//! Every script in `examples/` compiles (`-e`) against this machine's probes, and the
//! self-terminating ones run to completion.

use std::path::Path;
use std::process::Command;

fn examples() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "d"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_compiles() {
    let list = examples();
    assert!(list.len() >= 5, "examples missing");
    for p in list {
        // specopen.d needs a target; errors.d a $1.
        let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
            .args(["-e", "-c", "/bin/true", "-s"])
            .arg(&p)
            .arg("1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not compile:\n{}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn tpsched_runs_and_counts_switches() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tpsched.d");
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .arg("-s")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // At least one task switched out in 3 s, printed as "  name   count".
    let counts: Vec<i64> = text
        .lines()
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(
        !counts.is_empty() && counts.iter().all(|c| *c > 0),
        "{text}"
    );
}
