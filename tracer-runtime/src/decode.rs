//! Decoding ring-buffer records and aggregation keys into [`Value`]s, by the layouts of
//! `tracer-common`. Stacks and addresses are named by [`Symbols`] (`symbolize/`).

use super::maps::Entries;
use super::symbolize::{without_offset, Symbols};
use std::collections::HashMap;
use tracer_common::record::{Fault, FaultPayload, FAULT_EPID};
use tracer_common::{
    ActionDesc, AggDesc, AggEntry, AggSnapshot, AggValue, CompiledScript, Field, FieldType,
    RecordHeader, Value,
};

/// One clause firing: its header and the values of each action, in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub header: RecordHeader,
    pub actions: Vec<(ActionDesc, Vec<Value>)>,
}

/// A runtime fault reported by generated code (`epid == FAULT_EPID`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRecord {
    pub header: RecordHeader,
    /// The clause that faulted (index into `CompiledScript::clauses`).
    pub epid: u32,
    /// The raw fault code and its meaning when known.
    pub code: u32,
    pub fault: Option<Fault>,
    pub addr: u64,
    /// 1-based action index; 0 = the predicate.
    pub action: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Record(Record),
    Fault(FaultRecord),
}

/// Turns record and key bytes into values. Holds the symbolizer and its caches, so keep one
/// for the whole session.
pub struct Decoder {
    pub symbols: Symbols,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// The native-endian unsigned integer of `size` (1..=8) bytes at `off`.
fn read_uint(bytes: &[u8], off: usize, size: usize) -> Option<u64> {
    let b = bytes.get(off..off + size)?;
    let mut w = [0u8; 8];
    if cfg!(target_endian = "little") {
        w[..size].copy_from_slice(b);
    } else {
        w[8 - size..].copy_from_slice(b);
    }
    Some(u64::from_ne_bytes(w))
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    read_uint(bytes, off, 8).unwrap_or(0)
}

/// The integer of `size` bytes at `off`, sign-extended when `signed`.
pub fn decode_int(bytes: &[u8], off: usize, size: u8, signed: bool) -> i64 {
    let size = size.clamp(1, 8);
    let raw = read_uint(bytes, off, size as usize).unwrap_or(0);
    let shift = 64 - 8 * size as u32;
    if signed {
        ((raw << shift) as i64) >> shift
    } else {
        raw as i64
    }
}

/// The frames of a kernel stack, at most `depth`. A stack taken from made-up registers
/// (what the kernel gives tracepoint and raw tracepoint programs) can begin with the same
/// address twice: arm64's unwinder reports the saved pc and then the return address of the
/// same frame, which are equal there, and x86 does the same for non-hardware events on some
/// kernels. A real pc never equals the return address above it, so the copy is dropped.
fn kernel_frames(mut ips: Vec<u64>, depth: usize) -> Vec<u64> {
    if ips.len() >= 2 && ips[0] == ips[1] {
        ips.remove(0);
    }
    ips.truncate(depth);
    ips
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            symbols: Symbols::new(),
        }
    }

    /// Decode one ring-buffer record.
    pub fn event(&mut self, script: &CompiledScript, bytes: &[u8]) -> anyhow::Result<Event> {
        let header = RecordHeader::decode(bytes)
            .ok_or_else(|| anyhow::anyhow!("short record ({} bytes)", bytes.len()))?;
        if header.epid == FAULT_EPID {
            let p = FaultPayload::decode(bytes)
                .ok_or_else(|| anyhow::anyhow!("short fault record ({} bytes)", bytes.len()))?;
            return Ok(Event::Fault(FaultRecord {
                header,
                epid: p.epid,
                code: p.code,
                fault: Fault::from_code(p.code),
                addr: p.addr,
                action: p.action,
            }));
        }
        let clause = script
            .clauses
            .get(header.epid as usize)
            .ok_or_else(|| anyhow::anyhow!("record with unknown epid {}", header.epid))?;
        let actions = clause
            .actions
            .iter()
            .map(|a| {
                let values = a.fields.iter().map(|f| self.field(bytes, f)).collect();
                (a.clone(), values)
            })
            .collect();
        Ok(Event::Record(Record { header, actions }))
    }

    /// The value of `field` in `bytes` (a record or a map key). Out-of-range fields decode as
    /// zeroes rather than failing: a short buffer is a compiler bug, not a user error.
    pub fn field(&mut self, bytes: &[u8], field: &Field) -> Value {
        let off = field.offset as usize;
        match &field.ty {
            FieldType::Int { size, signed } => Value::Int {
                value: decode_int(bytes, off, *size, *signed),
                size: *size,
                signed: *signed,
            },
            FieldType::Str { size } => {
                let end = (off + *size as usize).min(bytes.len());
                let s = bytes.get(off..end).unwrap_or(&[]);
                let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
                Value::Str(String::from_utf8_lossy(s).into_owned())
            }
            FieldType::Bytes { size } => {
                let end = (off + *size as usize).min(bytes.len());
                Value::Bytes(bytes.get(off..end).unwrap_or(&[]).to_vec())
            }
            FieldType::KStack { depth } => {
                let n = u64_at(bytes, off).min(*depth as u64 + 1) as usize;
                let ips: Vec<u64> = (0..n).map(|i| u64_at(bytes, off + 8 + 8 * i)).collect();
                Value::Stack(self.symbols.kernel(&kernel_frames(ips, *depth as usize)))
            }
            FieldType::UStack { depth } => {
                let pid = u64_at(bytes, off) as u32;
                let n = u64_at(bytes, off + 8).min(*depth as u64) as usize;
                let ips: Vec<u64> = (0..n).map(|i| u64_at(bytes, off + 16 + 8 * i)).collect();
                Value::Stack(self.symbols.user(pid, &ips))
            }
            // func()/sym() name the function an address is in (no offset), as DTrace does.
            FieldType::KSym => {
                let addr = u64_at(bytes, off);
                Value::Sym(without_offset(
                    self.symbols.kernel(&[addr]).pop().unwrap_or_default(),
                ))
            }
            FieldType::USym => {
                let pid = u64_at(bytes, off) as u32;
                let addr = u64_at(bytes, off + 8);
                Value::Sym(without_offset(
                    self.symbols.user(pid, &[addr]).pop().unwrap_or_default(),
                ))
            }
        }
    }

    /// Symbolize every user address of these keys in one batch per process (and so one per
    /// file), before the keys are decoded one by one from the cache.
    fn prefetch_user(&mut self, desc: &AggDesc, raw: &Entries) {
        let mut by_pid: HashMap<u32, Vec<u64>> = HashMap::new();
        for (key, _) in raw {
            for f in &desc.keys {
                let off = f.offset as usize;
                let (pid, addrs): (u32, Vec<u64>) = match f.ty {
                    FieldType::UStack { depth } => {
                        let n = u64_at(key, off + 8).min(depth as u64) as usize;
                        let ips = (0..n).map(|i| u64_at(key, off + 16 + 8 * i)).collect();
                        (u64_at(key, off) as u32, ips)
                    }
                    FieldType::USym => (u64_at(key, off) as u32, vec![u64_at(key, off + 8)]),
                    _ => continue,
                };
                if pid != 0 {
                    by_pid.entry(pid).or_default().extend(addrs);
                }
            }
        }
        for (pid, addrs) in by_pid {
            self.symbols.prefetch(pid, &addrs);
        }
    }

    /// An aggregation key's values, per `AggDesc::keys`.
    pub fn agg_key(&mut self, desc: &AggDesc, key: &[u8]) -> Vec<Value> {
        desc.keys.iter().map(|f| self.field(key, f)).collect()
    }

    /// Merge raw per-CPU entries of one aggregation into a snapshot (unsorted, `normal` 1).
    pub fn snapshot(&mut self, desc: &AggDesc, raw: &Entries) -> AggSnapshot {
        // Keys that decode alike are one entry: `func(pc)` keys hold raw addresses, and every
        // address inside one function is that function, as DTrace aggregates them.
        let mut groups: Vec<(Vec<Value>, Vec<&[u8]>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.prefetch_user(desc, raw);
        for (key, per_cpu) in raw {
            let keys = self.agg_key(desc, key);
            let id = format!("{keys:?}");
            let slot = *index.entry(id).or_insert_with(|| {
                groups.push((keys, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.extend(per_cpu.iter().map(|v| v.as_slice()));
        }
        let entries = groups
            .into_iter()
            .map(|(keys, slices)| AggEntry {
                keys,
                value: AggValue::merge(&desc.func, slices),
            })
            .collect();
        AggSnapshot {
            desc: desc.clone(),
            entries,
            normal: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{ActionKind, AggFunc, ClauseDesc, Options};

    #[test]
    fn kernel_stacks_drop_a_doubled_first_frame_and_keep_depth() {
        assert_eq!(kernel_frames(vec![5, 5, 6, 7], 3), [5, 6, 7]);
        assert_eq!(kernel_frames(vec![4, 5, 6, 7], 3), [4, 5, 6]);
        assert_eq!(kernel_frames(vec![5, 5], 1), [5]);
        assert_eq!(kernel_frames(vec![6, 5, 5], 3), [6, 5, 5]);
        assert!(kernel_frames(vec![], 3).is_empty());
    }

    fn script(clauses: Vec<ClauseDesc>) -> CompiledScript {
        CompiledScript {
            elf: Vec::new(),
            programs: Vec::new(),
            probes: Vec::new(),
            clauses,
            aggs: Vec::new(),
            options: Options::default(),
            map_sizes: Vec::new(),
            map_init: Vec::new(),
        }
    }

    #[test]
    fn ints_strings_and_faults() {
        let fields = vec![
            Field {
                offset: 16,
                ty: FieldType::Int {
                    size: 1,
                    signed: true,
                },
            },
            Field {
                offset: 17,
                ty: FieldType::Int {
                    size: 2,
                    signed: false,
                },
            },
            Field {
                offset: 20,
                ty: FieldType::Int {
                    size: 4,
                    signed: true,
                },
            },
            Field {
                offset: 24,
                ty: FieldType::Str { size: 8 },
            },
        ];
        let action = ActionDesc {
            kind: ActionKind::Printf {
                format: tracer_common::Format::parse("%d").unwrap(),
            },
            fields,
        };
        let s = script(vec![ClauseDesc {
            probe: 0,
            size: 32,
            actions: vec![action],
        }]);
        let mut rec = vec![0u8; 32];
        rec[4] = 1; // cpu
        rec[16] = 0xff;
        rec[17..19].copy_from_slice(&0xfffeu16.to_le_bytes());
        rec[20..24].copy_from_slice(&(-5i32).to_le_bytes());
        rec[24..27].copy_from_slice(b"abc");
        let mut d = Decoder::new();
        let Event::Record(r) = d.event(&s, &rec).unwrap() else {
            panic!()
        };
        assert_eq!(r.header.cpu, 1);
        let vals = &r.actions[0].1;
        assert_eq!(
            vals[0],
            Value::Int {
                value: -1,
                size: 1,
                signed: true
            }
        );
        assert_eq!(vals[1].as_i64(), Some(0xfffe));
        assert_eq!(vals[2].as_i64(), Some(-5));
        assert_eq!(vals[3], Value::Str("abc".into()));

        let mut f = vec![0u8; 40];
        f[..4].copy_from_slice(&FAULT_EPID.to_le_bytes());
        f[16] = 0;
        f[20] = 1;
        f[24..32].copy_from_slice(&0xdeadu64.to_le_bytes());
        f[32] = 2;
        let Event::Fault(fr) = d.event(&s, &f).unwrap() else {
            panic!()
        };
        assert_eq!(
            (fr.fault, fr.addr, fr.action),
            (Some(Fault::BadAddr), 0xdead, 2)
        );
        assert!(d.event(&s, &[0u8; 4]).is_err());
    }

    /// A `-c` target's libc frames symbolize after it exited, through the copy of its
    /// mappings taken at its exit stop (libc is mapped after the exec, by the loader).
    #[test]
    fn exited_targets_symbolize_through_the_exit_copy() {
        let mut d = Decoder::new();
        let mut t = crate::target::Target::spawn_stopped("sleep 0.5").unwrap();
        t.release().unwrap();
        let at_exec = t
            .maps_copy()
            .unwrap()
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default();
        if !at_exec.contains("/ld-") {
            eprintln!("skipped: sleep is statically linked here:\n{at_exec}");
            return;
        }
        d.symbols.follow_copies(t.pid(), t.maps_copy().unwrap());
        // Remembered at exec, as the runtime does: libc is not mapped yet.
        d.symbols.remember_process(t.pid());
        t.resume().unwrap();
        let libc_text = || {
            let maps = std::fs::read_to_string(format!("/proc/{}/maps", t.pid())).ok()?;
            let line = maps
                .lines()
                .find(|l| l.contains("/libc.so") && l.contains(" r-xp "))?;
            u64::from_str_radix(line.split('-').next()?, 16).ok()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let start = loop {
            if let Some(start) = libc_text() {
                break start;
            }
            assert!(std::time::Instant::now() < deadline, "libc never mapped");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(t.wait()).unwrap();
        let syms = d.symbols.user(t.pid(), &[start + 0x2000]);
        assert!(syms[0].starts_with("libc.so"), "{syms:?}");
    }

    #[test]
    fn snapshot_merges_cpus_and_symbolizes() {
        let desc = AggDesc {
            name: "a".into(),
            func: AggFunc::Count,
            map: "agg_a".into(),
            keys: vec![Field {
                offset: 0,
                ty: FieldType::KSym,
            }],
            key_size: 8,
            max_entries: 10,
        };
        let addr = aya::util::kernel_symbols()
            .ok()
            .and_then(|m| m.into_iter().find(|(_, n)| n == "vfs_read").map(|(a, _)| a));
        let mut d = Decoder::new();
        let key = addr.unwrap_or(0).to_le_bytes().to_vec();
        let raw = vec![(
            key,
            vec![2u64.to_ne_bytes().to_vec(), 3u64.to_ne_bytes().to_vec()],
        )];
        let snap = d.snapshot(&desc, &raw);
        assert_eq!(snap.entries[0].value, AggValue::Scalar(5));
        if let Some(a) = addr.filter(|&a| a != 0) {
            let want = Value::Sym("vmlinux`vfs_read".into());
            assert_eq!(snap.entries[0].keys[0], want, "kallsyms address {a:#x}");
            let s = d.symbols.kernel(&[a + 5]);
            assert_eq!(s[0], "vmlinux`vfs_read+0x5");
        }
        // The current process symbolizes its own functions (unless stripped).
        let _g = crate::tests::lock();
        let me = std::process::id();
        let addr = ints_strings_and_faults as *const () as u64;
        let f = d.symbols.user(me, &[addr]);
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let stripped = object::File::parse(&*exe).is_ok_and(|f| {
            use object::Object;
            f.symbol_table().is_none()
        });
        if stripped {
            assert!(f[0].starts_with("0x") || f[0].contains('`'), "{f:?}");
        } else {
            assert!(f[0].contains("ints_strings_and_faults"), "{f:?}");
            assert!(
                f[0].starts_with("tracer_runtime-"),
                "module is the binary's name: {f:?}"
            );
        }
    }
}
