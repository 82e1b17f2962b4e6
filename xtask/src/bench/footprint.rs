//! Case 6: the size of each tool on disk, with the shared libraries it needs.

use super::report::{bytes, x, Section};
use super::{Env, Findings};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libraries `ldd` resolves for a binary: (name, path). Empty for a static binary.
fn ldd(bin: &Path) -> Vec<(String, Option<PathBuf>)> {
    let Ok(out) = Command::new("ldd").arg(bin).output() else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.contains("not a dynamic executable")
            || line.contains("statically linked")
        {
            continue;
        }
        let name = line.split_whitespace().next().unwrap_or("").to_string();
        let path = if let Some((_, rest)) = line.split_once("=>") {
            rest.split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from)
        } else if name.starts_with('/') {
            Some(PathBuf::from(&name))
        } else {
            None // linux-vdso
        };
        if name.starts_with("linux-vdso") || name.starts_with("linux-gate") {
            continue;
        }
        libs.push((name, path));
    }
    libs
}

fn size(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

fn lib_bytes(libs: &[(String, Option<PathBuf>)]) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for (_, p) in libs {
        if let Some(p) = p {
            let real = std::fs::canonicalize(p).unwrap_or(p.clone());
            if seen.insert(real.clone()) {
                total += size(&real).unwrap_or(0);
            }
        }
    }
    total
}

fn short_names(libs: &[(String, Option<PathBuf>)]) -> String {
    libs.iter()
        .map(|(n, _)| {
            n.trim_end_matches(".so.1")
                .trim_end_matches(".so.6")
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(env: &Env, found: &mut Findings) -> Section {
    let mut sec = Section::new(
        "6. Footprint",
        &["", "tracer", "bpftrace", "tracer/bpftrace"],
    );
    let tracer = size(&env.tracer);
    let bpftrace_real = std::fs::canonicalize(&env.bpftrace).unwrap_or(env.bpftrace.clone());
    let bpftrace = size(&bpftrace_real);
    let tl = ldd(&env.tracer);
    let bl = ldd(&bpftrace_real);
    let (tlb, blb) = (lib_bytes(&tl), lib_bytes(&bl));
    sec.row(vec![
        "release binary (stripped)".into(),
        bytes(tracer),
        bytes(bpftrace),
        x(tracer.zip(bpftrace).map(|(a, b)| a as f64 / b as f64)),
    ]);
    sec.row(vec![
        "shared libraries (ldd)".into(),
        format!("{} ({})", tl.len(), bytes(Some(tlb))),
        format!("{} ({})", bl.len(), bytes(Some(blb))),
        "".into(),
    ]);
    let tt = tracer.map(|t| t + tlb);
    let bt = bpftrace.map(|b| b + blb);
    sec.row(vec![
        "binary + libraries".into(),
        bytes(tt),
        bytes(bt),
        x(tt.zip(bt).map(|(a, b)| a as f64 / b as f64)),
    ]);

    // A static musl build, when the target is installed.
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == triple)
        })
        .unwrap_or(false);
    let musl_bin = env.target_dir.join(&triple).join("release/tracer");
    let mut musl_note = String::new();
    let musl_size = if !installed {
        musl_note = format!("`rustup target add {triple}` to measure a static build");
        None
    } else if env.quick {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if musl_bin.exists() && mtime(&musl_bin) >= mtime(&env.tracer) {
            musl_note = "from an earlier full `cargo xtask bench`".into();
            size(&musl_bin)
        } else if musl_bin.exists() {
            musl_note = "not built in --quick mode (the one on disk is older than the \
                          release binary)"
                .into();
            None
        } else {
            musl_note = "not built in --quick mode".into();
            None
        }
    } else {
        eprintln!("bench: building a static tracer (cargo build --release -p tracer-cli --target {triple})");
        let out = Command::new("cargo")
            .args([
                "build",
                "--release",
                "-p",
                "tracer-cli",
                "--target",
                &triple,
            ])
            .current_dir(&env.root)
            .output();
        match out {
            Ok(o) if o.status.success() => size(&musl_bin),
            Ok(o) => {
                // The first error and the place it points at.
                let err = String::from_utf8_lossy(&o.stderr);
                let mut lines = err.lines().skip_while(|l| !l.starts_with("error"));
                let first = lines.next().unwrap_or("").trim().to_string();
                let at = lines
                    .find_map(|l| l.trim_start().strip_prefix("--> "))
                    .map(|p| format!(" at {}", p.trim()))
                    .unwrap_or_default();
                musl_note = format!("the musl build fails: {first}{at}").replace('`', "'");
                None
            }
            Err(e) => {
                musl_note = format!("cannot run cargo: {e}");
                None
            }
        }
    };
    let static_deps = if musl_size.is_some() {
        let l = ldd(&musl_bin);
        if l.is_empty() {
            " (no shared libraries)".to_string()
        } else {
            format!(" ({} shared libraries)", l.len())
        }
    } else {
        String::new()
    };
    sec.row(vec![
        format!("static binary ({triple}, stripped)"),
        match musl_size {
            Some(s) => format!("{}{static_deps}", bytes(Some(s))),
            None => "not measured".into(),
        },
        "—".into(),
        "".into(),
    ]);
    if !musl_note.is_empty() {
        sec.note(format!("static build: {musl_note}"));
    }
    sec.note(format!("tracer's libraries: {}", short_names(&tl)));
    let mut big: Vec<(u64, String)> = bl
        .iter()
        .filter_map(|(n, p)| {
            let p = p.as_ref()?;
            Some((
                size(&std::fs::canonicalize(p).unwrap_or(p.clone()))?,
                n.clone(),
            ))
        })
        .collect();
    big.sort_by(|a, b| b.cmp(a));
    sec.note(format!(
        "bpftrace ({}): {} libraries; the largest: {}",
        bpftrace_real.display(),
        bl.len(),
        big.iter()
            .take(4)
            .map(|(s, n)| format!("{n} {}", bytes(Some(*s))))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    found.static_size = musl_size;
    found.static_note = musl_note;
    sec
}
