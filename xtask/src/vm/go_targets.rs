//! The Go programs of `tests/targets/go/`, cross-compiled on the host for the guest's arch
//! (`GOARCH`, static with `CGO_ENABLED=0`), plain and stripped (`-ldflags=-s -w`). The guest has
//! no Go toolchain: a `go` shim there copies the prebuilt program that `go build` asks for, so
//! the Go tests (return probes on return instructions) run on every kernel and arch.

use super::Arch;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The flags of the stripped variant, as the tests pass them to `go build`.
const STRIPPED: &str = "-ldflags=-s -w";

fn goarch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Aarch64 => "arm64",
    }
}

/// (name in the guest's targets directory, executable): `go/NAME` and `go/NAME-stripped`.
pub fn build(root: &Path, arch: Arch, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    if Command::new("go").arg("version").output().is_err() {
        bail!("go is not installed on the host (apt-get install golang-go)");
    }
    let dir = out.join("go");
    std::fs::create_dir_all(&dir)?;
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(root.join("tests/targets/go"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "go"))
        .collect();
    srcs.sort();
    let mut built = Vec::new();
    for src in srcs {
        let name = src.file_stem().unwrap().to_string_lossy().into_owned();
        for (suffix, flags) in [("", None), ("-stripped", Some(STRIPPED))] {
            let exe = dir.join(format!("{name}{suffix}"));
            let r = Command::new("go")
                .arg("build")
                .args(flags)
                .arg("-o")
                .arg(&exe)
                .arg(&src)
                .env("GOARCH", goarch(arch))
                .env("CGO_ENABLED", "0")
                .env("GOCACHE", out.join("go-cache"))
                .env("GOPATH", out.join("go-path"))
                .env("HOME", out)
                .env("GOFLAGS", "")
                .output()
                .context("cannot run go")?;
            if !r.status.success() {
                bail!(
                    "go build {} failed:\n{}",
                    src.display(),
                    String::from_utf8_lossy(&r.stderr)
                );
            }
            built.push((format!("go/{name}{suffix}"), exe));
        }
    }
    Ok(built)
}

/// `go version`, and `go build [flags] -o OUT SRC.go`: copy the prebuilt program.
pub fn shim(targets: &str) -> String {
    format!(
        r#"#!/bin/sh
# vm-test: the Go targets were cross-compiled on the host; copy the one asked for.
[ "$1" = version ] && {{ echo "go version (vm-test shim: prebuilt targets)"; exit 0; }}
out=; src=; suffix=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift ;;
    '{STRIPPED}') suffix=-stripped ;;
    *.go) src=$1 ;;
  esac
  shift
done
name=$(basename "$src" .go)
if [ ! -x "{targets}/go/$name$suffix" ]; then
  echo "vm-test go shim: no prebuilt $name$suffix" >&2
  exit 1
fi
cp "{targets}/go/$name$suffix" "$out"
"#
    )
}
