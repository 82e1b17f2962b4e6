//! Debian packages (kernels, busybox-static) fetched with apt only, through private apt states
//! under the cache directory: the machine's `/etc/apt` and its package lists stay untouched,
//! and both architectures are available without `dpkg --add-architecture`.

use super::{Arch, Suite};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The package lists are refreshed when older than this (or when a download fails).
const LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

fn sources(suite: Suite) -> Vec<String> {
    let deb = |uri: &str, s: &str| {
        format!("deb [signed-by={KEYRING}] http://deb.debian.org/{uri} {s} main")
    };
    match suite {
        Suite::Bookworm => vec![
            deb("debian", "bookworm"),
            deb("debian", "bookworm-updates"),
            deb("debian-security", "bookworm-security"),
        ],
        Suite::Sid => vec![deb("debian", "sid")],
    }
}

/// One private apt state (sources list, package lists, download cache).
pub struct Apt {
    dir: PathBuf,
    updated: bool,
}

impl Apt {
    pub fn new(cache: &Path, suite: Suite) -> Result<Apt> {
        let dir = cache.join("apt").join(match suite {
            Suite::Bookworm => "bookworm",
            Suite::Sid => "sid",
        });
        std::fs::create_dir_all(dir.join("lists/partial"))?;
        std::fs::create_dir_all(dir.join("cache/archives/partial"))?;
        let list = sources(suite).join("\n") + "\n";
        let path = dir.join("sources.list");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(list.as_str()) {
            std::fs::write(&path, list)?;
            // New sources: the old lists do not describe them.
            let _ = std::fs::remove_file(dir.join("updated"));
        }
        Ok(Apt {
            dir,
            updated: false,
        })
    }

    fn options(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            format!("-oDir::Etc::SourceList={d}/sources.list"),
            "-oDir::Etc::SourceParts=/nonexistent".into(),
            format!("-oDir::State::Lists={d}/lists"),
            format!("-oDir::Cache={d}/cache"),
            "-oAPT::Architectures::=amd64".into(),
            "-oAPT::Architectures::=arm64".into(),
            // Only the Packages files: no translations, Contents or AppStream metadata.
            "-oAcquire::Languages=none".into(),
            "-oAcquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false".into(),
            "-oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            "-oAcquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
            "-oAcquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
            "-oAcquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false".into(),
            "-oAcquire::IndexTargets::deb::CNF::DefaultEnabled=false".into(),
            // Downloads go to directories of root's: no sandbox user (and no warning about it).
            "-oAPT::Sandbox::User=root".into(),
            "-qq".into(),
        ]
    }

    fn stamp(&self) -> PathBuf {
        self.dir.join("updated")
    }

    /// Refresh the package lists when they are missing or old (`force`: always, once per run).
    pub fn update(&mut self, force: bool) -> Result<()> {
        if self.updated {
            return Ok(());
        }
        let fresh = std::fs::metadata(self.stamp())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < LISTS_MAX_AGE);
        if fresh && !force {
            return Ok(());
        }
        eprintln!("vm-test: apt-get update ({})", self.dir.display());
        let st = Command::new("apt-get")
            .args(self.options())
            .arg("update")
            .status()
            .context("cannot run apt-get")?;
        if !st.success() {
            bail!("apt-get update failed for {}", self.dir.display());
        }
        std::fs::write(self.stamp(), "")?;
        self.updated = true;
        Ok(())
    }

    /// Package names matching the extended regular expression `re` (anchored by the caller).
    pub fn search(&mut self, re: &str) -> Result<Vec<String>> {
        self.update(false)?;
        let out = Command::new("apt-cache")
            .args(self.options())
            .args(["search", "--names-only", re])
            .output()
            .context("cannot run apt-cache")?;
        if !out.status.success() {
            bail!(
                "apt-cache search {re} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(" - ").next())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The newest package matching `re` (by the numbers in its name), e.g. the highest ABI.
    pub fn newest(&mut self, re: &str) -> Result<String> {
        let mut names = self.search(re)?;
        if names.is_empty() && !self.updated {
            self.update(true)?;
            names = self.search(re)?;
        }
        names.sort_by_key(|n| version_key(n));
        names
            .pop()
            .with_context(|| format!("no package matches {re} in {}", self.dir.display()))
    }

    /// The `.deb` of `package` for `arch`, from the cache or downloaded into `debs`.
    pub fn download(&mut self, package: &str, arch: Arch, debs: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(debs)?;
        if let Some(p) = find_deb(debs, package, arch)? {
            return Ok(p);
        }
        for attempt in 0..2 {
            if attempt == 1 {
                self.update(true)?;
            }
            eprintln!("vm-test: apt-get download {package}:{}", arch.deb());
            let st = Command::new("apt-get")
                .args(self.options())
                .arg("download")
                .arg(format!("{package}:{}", arch.deb()))
                .current_dir(debs)
                .status()
                .context("cannot run apt-get")?;
            if st.success() {
                if let Some(p) = find_deb(debs, package, arch)? {
                    return Ok(p);
                }
            }
        }
        bail!("cannot download {package}:{}", arch.deb())
    }
}

fn find_deb(dir: &Path, package: &str, arch: Arch) -> Result<Option<PathBuf>> {
    let prefix = format!("{}_", package.replace(':', "%3a"));
    let suffix = format!("_{}.deb", arch.deb());
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(&suffix) {
            return Ok(Some(dir.join(name)));
        }
    }
    Ok(None)
}

/// The numbers in a package name, for ordering `6.1.0-47` before `6.1.0-50`.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Extract `deb` into `dir` (once: a stamp file marks a finished extraction).
pub fn extract(deb: &Path, dir: &Path) -> Result<()> {
    let stamp = dir.join(".extracted");
    if stamp.exists() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let st = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dir)
        .status()
        .context("cannot run dpkg-deb")?;
    if !st.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    std::fs::write(stamp, "")?;
    Ok(())
}

/// The kernel image in an extracted kernel package and its release string:
/// `boot/vmlinuz-REL` (up to 6.x) or `usr/lib/modules/REL/vmlinuz*` (sid's split packages).
pub fn find_kernel(dir: &Path) -> Result<(PathBuf, String)> {
    if let Ok(rd) = std::fs::read_dir(dir.join("boot")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(rel) = name.strip_prefix("vmlinuz-") {
                return Ok((e.path(), rel.to_string()));
            }
        }
    }
    for base in ["usr/lib/modules", "lib/modules"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(base)) {
            for e in rd.flatten() {
                let rel = e.file_name().to_string_lossy().into_owned();
                if let Ok(files) = std::fs::read_dir(e.path()) {
                    for f in files.flatten() {
                        if f.file_name().to_string_lossy().starts_with("vmlinuz") {
                            return Ok((f.path(), rel));
                        }
                    }
                }
            }
        }
    }
    bail!("no vmlinuz in {}", dir.display())
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_order() {
        let mut v = [
            "linux-image-6.1.0-50-cloud-amd64",
            "linux-image-6.1.0-9-cloud-amd64",
            "linux-image-6.1.0-47-cloud-amd64",
        ];
        v.sort_by_key(|n| super::version_key(n));
        assert_eq!(v.last().unwrap(), &"linux-image-6.1.0-50-cloud-amd64");
    }
}
