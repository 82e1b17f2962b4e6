//! A writer of newc ("070701") cpio archives, the format the kernel unpacks as an initramfs.
//! Parent directories are added as needed, so entries can be given in any order.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

pub struct Cpio {
    out: BufWriter<File>,
    written: u64,
    ino: u32,
    dirs: BTreeSet<String>,
    names: BTreeSet<String>,
}

impl Cpio {
    pub fn create(path: &Path) -> Result<Cpio> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Cpio {
            out: BufWriter::with_capacity(1 << 20, f),
            written: 0,
            ino: 1,
            dirs: BTreeSet::new(),
            names: BTreeSet::new(),
        })
    }

    /// A directory (and its parents), mode 0755.
    pub fn dir(&mut self, path: &str) -> Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.dirs.insert(path.to_string());
        self.entry(path, S_IFDIR | 0o755, 0, 2, &mut std::io::empty(), 0)
    }

    /// A regular file with `data` as its contents.
    pub fn bytes(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let path = self.prepare(path)?;
        self.entry(
            &path,
            S_IFREG | mode,
            0,
            1,
            &mut &data[..],
            data.len() as u64,
        )
    }

    /// A copy of the host file `src` (with its permission bits).
    pub fn file(&mut self, path: &str, src: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.prepare(path)?;
        let mut f = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
        let meta = f.metadata()?;
        let mode = meta.permissions().mode() & 0o7777;
        self.entry(&path, S_IFREG | mode, 0, 1, &mut f, meta.len())
            .with_context(|| format!("cannot archive {}", src.display()))
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let path = self.prepare(path)?;
        let t = target.as_bytes();
        self.entry(&path, S_IFLNK | 0o777, 0, 1, &mut &t[..], t.len() as u64)
    }

    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result<()> {
        let path = self.prepare(path)?;
        self.entry(
            &path,
            S_IFCHR | mode,
            (major << 8) | minor,
            1,
            &mut std::io::empty(),
            0,
        )
    }

    /// Every file under the host directory `src`, archived under `path`, skipping
    /// directories named `target` and `.git`.
    pub fn tree(&mut self, path: &str, src: &Path) -> Result<()> {
        self.dir(path)?;
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .with_context(|| format!("cannot read {}", src.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let ty = e.file_type()?;
            let sub = format!("{}/{}", path.trim_end_matches('/'), name);
            if ty.is_dir() {
                if name != "target" && name != ".git" {
                    self.tree(&sub, &e.path())?;
                }
            } else if ty.is_file() {
                self.file(&sub, &e.path())?;
            } else if ty.is_symlink() {
                let t = std::fs::read_link(e.path())?;
                self.symlink(&sub, &t.to_string_lossy())?;
            }
        }
        Ok(())
    }

    /// Close the archive with its trailer.
    pub fn finish(mut self) -> Result<u64> {
        self.entry("TRAILER!!!", 0, 0, 1, &mut std::io::empty(), 0)?;
        self.out.flush()?;
        Ok(self.written)
    }

    fn prepare(&mut self, path: &str) -> Result<String> {
        let path = path.trim_matches('/').to_string();
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        anyhow::ensure!(
            self.names.insert(path.clone()),
            "{path} is in the initramfs twice"
        );
        Ok(path)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        rdev: u32,
        nlink: u32,
        data: &mut dyn Read,
        size: u64,
    ) -> Result<()> {
        anyhow::ensure!(size <= u32::MAX as u64, "{name} is too large for cpio");
        let ino = self.ino;
        self.ino += 1;
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, // uid
            0, // gid
            0, // mtime
            0, // devmajor
            0, // devminor
            rdev >> 8,
            rdev & 0xff,
            name.len() + 1,
            0, // check
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        let copied = std::io::copy(&mut data.take(size), &mut self.out)?;
        anyhow::ensure!(copied == size, "{name} changed while being archived");
        self.written += copied;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0, 0, 0][..n])
    }
}
