//! Raw access to maps whose key and value sizes are only known at run time (aggregations,
//! `stats`), with `bpf()` syscalls on the map fd.
//!
//! Per-CPU maps exchange values as `nr_possible_cpus × round_up(value_size, 8)` bytes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;
use tracer_common::script::NSTATS;

const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_MAP_GET_NEXT_KEY: u32 = 4;
const BPF_MAP_LOOKUP_BATCH: u32 = 24;
const BPF_ANY: u64 = 0;
/// The kernel's internal `ENOTSUPP`, which leaks to user space from batch ops.
const ENOTSUPP: i32 = 524;

/// `bpf_attr` for the `*_ELEM` and `GET_NEXT_KEY` commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `bpf_attr` for the batch commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn sys_bpf<T>(cmd: u32, attr: &mut T) -> io::Result<()> {
    // SAFETY: `attr` is a properly laid out, fully initialised `bpf_attr` prefix; the buffers
    // it points to are owned by the caller and large enough for the command.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Number of possible CPUs (the per-CPU value count), from `/sys/devices/system/cpu/possible`.
pub fn nr_possible_cpus() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| aya::util::nr_cpus().unwrap_or(1).max(1))
}

/// The shape of a map as the kernel reports it.
#[derive(Debug, Clone, Copy)]
pub struct RawMap<'a> {
    pub fd: BorrowedFd<'a>,
    pub key_size: usize,
    pub value_size: usize,
    pub per_cpu: bool,
}

/// Every key with its value(s): one entry per possible CPU for per-CPU maps, else one.
pub type Entries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

impl RawMap<'_> {
    fn ncpus(&self) -> usize {
        if self.per_cpu {
            nr_possible_cpus()
        } else {
            1
        }
    }

    fn stride(&self) -> usize {
        if self.per_cpu {
            self.value_size.div_ceil(8) * 8
        } else {
            self.value_size
        }
    }

    /// Bytes of one lookup's value buffer.
    fn value_buf_len(&self) -> usize {
        self.stride() * self.ncpus()
    }

    fn split_values(&self, buf: &[u8]) -> Vec<Vec<u8>> {
        let stride = self.stride().max(1);
        buf.chunks(stride)
            .take(self.ncpus())
            .map(|c| c[..self.value_size].to_vec())
            .collect()
    }

    fn elem(&self, cmd: u32, key: &[u8], value: *mut u8, flags: u64) -> io::Result<()> {
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value: value as u64,
            flags,
            ..Default::default()
        };
        sys_bpf(cmd, &mut attr)
    }

    /// The value(s) of one key, `None` if absent.
    pub fn lookup(&self, key: &[u8]) -> io::Result<Option<Vec<Vec<u8>>>> {
        let mut buf = vec![0u8; self.value_buf_len()];
        match self.elem(BPF_MAP_LOOKUP_ELEM, key, buf.as_mut_ptr(), 0) {
            Ok(()) => Ok(Some(self.split_values(&buf))),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every key, by `GET_NEXT_KEY`.
    pub fn keys(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        let mut next = vec![0u8; self.key_size];
        loop {
            let prev: Option<&Vec<u8>> = keys.last();
            let mut attr = ElemAttr {
                map_fd: self.fd.as_raw_fd() as u32,
                key: prev.map_or(0, |k| k.as_ptr() as u64),
                value: next.as_mut_ptr() as u64,
                ..Default::default()
            };
            match sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
                Ok(()) => keys.push(next.clone()),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(keys),
                Err(e) => return Err(e),
            }
        }
    }

    /// Every key with its value(s): `LOOKUP_BATCH` when the kernel has it (5.6+), else
    /// `GET_NEXT_KEY` + `LOOKUP_ELEM`. Keys deleted meanwhile are skipped.
    pub fn read_all(&self) -> io::Result<Entries> {
        match self.read_batch() {
            Ok(entries) => Ok(entries),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | ENOTSUPP)) => {
                self.read_one_by_one()
            }
            Err(e) => Err(e),
        }
    }

    fn read_one_by_one(&self) -> io::Result<Entries> {
        let mut out = Vec::new();
        for key in self.keys()? {
            if let Some(values) = self.lookup(&key)? {
                out.push((key, values));
            }
        }
        Ok(out)
    }

    fn read_batch(&self) -> io::Result<Entries> {
        let vlen = self.value_buf_len();
        let mut count: usize = 256;
        // The batch token: a bucket index (u32) for hash maps, a key for arrays.
        let token_len = self.key_size.max(8);
        let mut in_batch = vec![0u8; token_len];
        let mut out_batch = vec![0u8; token_len];
        let mut first = true;
        let mut out = Vec::new();
        loop {
            let mut keys = vec![0u8; count * self.key_size];
            let mut values = vec![0u8; count * vlen];
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    in_batch.as_mut_ptr() as u64
                },
                out_batch: out_batch.as_mut_ptr() as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: count as u32,
                map_fd: self.fd.as_raw_fd() as u32,
                ..Default::default()
            };
            let res = sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
            let done = match &res {
                Ok(()) => false,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
                // A bucket holds more entries than `count`: retry with more room.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && count < 1 << 20 => {
                    count *= 4;
                    continue;
                }
                Err(_) => return res.map(|_| Vec::new()),
            };
            let n = attr.count as usize;
            for i in 0..n {
                let key = keys[i * self.key_size..(i + 1) * self.key_size].to_vec();
                out.push((key, self.split_values(&values[i * vlen..(i + 1) * vlen])));
            }
            if done {
                return Ok(out);
            }
            std::mem::swap(&mut in_batch, &mut out_batch);
            first = false;
        }
    }

    /// Store `values` (one per CPU for per-CPU maps, each `value_size` bytes) under `key`.
    pub fn update(&self, key: &[u8], values: &[Vec<u8>]) -> io::Result<()> {
        let stride = self.stride();
        let mut buf = vec![0u8; self.value_buf_len()];
        for (cpu, v) in values.iter().take(self.ncpus()).enumerate() {
            let n = v.len().min(self.value_size);
            buf[cpu * stride..cpu * stride + n].copy_from_slice(&v[..n]);
        }
        self.elem(BPF_MAP_UPDATE_ELEM, key, buf.as_mut_ptr(), BPF_ANY)
    }

    /// DTrace's `clear()`: zero the value of every key, keeping the keys.
    pub fn clear(&self) -> io::Result<()> {
        let mut zero = vec![0u8; self.value_buf_len()];
        for key in self.keys()? {
            match self.elem(BPF_MAP_UPDATE_ELEM, &key, zero.as_mut_ptr(), BPF_ANY) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Delete `keys` (missing ones are ignored).
    pub fn delete(&self, keys: &[Vec<u8>]) -> io::Result<()> {
        for key in keys {
            match self.elem(BPF_MAP_DELETE_ELEM, key, std::ptr::null_mut(), 0) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The `stats` PERCPU_ARRAY as `[cpu][stat]` counters. Accepts both layouts: `NSTATS`
/// entries of one u64 (the layout [`tracer_common::script::Stat`] documents), or one entry of
/// `NSTATS` u64s.
pub fn read_stats(map: &RawMap<'_>) -> io::Result<Vec<[u64; NSTATS as usize]>> {
    let ncpus = nr_possible_cpus();
    let mut out = vec![[0u64; NSTATS as usize]; ncpus];
    let word = |v: &[u8], i: usize| {
        v.get(i * 8..i * 8 + 8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap()))
    };
    if map.value_size >= NSTATS as usize * 8 {
        if let Some(values) = map.lookup(&0u32.to_ne_bytes())? {
            for (cpu, v) in values.iter().enumerate() {
                for (s, slot) in out[cpu].iter_mut().enumerate() {
                    *slot = word(v, s);
                }
            }
        }
    } else {
        for s in 0..NSTATS {
            if let Some(values) = map.lookup(&s.to_ne_bytes())? {
                for (cpu, v) in values.iter().enumerate() {
                    out[cpu][s as usize] = word(v, 0);
                }
            }
        }
    }
    Ok(out)
}
