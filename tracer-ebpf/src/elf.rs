//! The in-memory ELF object that aya loads.
//!
//! Layout (what `aya-obj` 0.3 parses, in `aya-obj/src/obj.rs`):
//! - EM_BPF, little-endian ELF64 relocatable;
//! - a legacy `maps` section of 28-byte `struct bpf_map_def`, one global `STT_OBJECT` symbol of
//!   size 28 per map (and no section symbol: aya would parse it as a map);
//! - one executable section per program with one global `STT_FUNC` symbol covering all of it;
//! - an `R_BPF_64_64` REL relocation on the first slot of each map-loading `LD_IMM64`, against
//!   the map's symbol;
//! - a `license` section holding `"GPL\0"`;
//! - for a map whose name starts with `.data` (see [`MapDef::is_data`]): a zero-filled data
//!   section of that name instead of a `maps` entry, with one `STT_OBJECT` symbol at its
//!   start. aya makes it a one-entry ARRAY and turns each `LD_IMM64` against it into
//!   `BPF_PSEUDO_MAP_VALUE`: the program gets the value's address with no lookup call.

use crate::insn::Insn;
use object::write::{Object, Relocation, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationEncoding, RelocationFlags, RelocationKind,
    SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use std::collections::HashSet;
use std::fmt;

/// Size of a legacy `struct bpf_map_def` (type, key_size, value_size, max_entries, flags, id,
/// pinning; seven u32).
pub const MAP_DEF_SIZE: usize = 28;

/// One map of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

impl MapDef {
    /// A global-data map: its value is addressed directly by the programs (see the module
    /// documentation).
    pub fn is_data(&self) -> bool {
        self.name.starts_with(".data")
    }

    /// The 28 bytes of the legacy `bpf_map_def` (id and pinning are 0).
    pub fn encode(&self) -> [u8; MAP_DEF_SIZE] {
        let mut b = [0u8; MAP_DEF_SIZE];
        let words = [
            self.map_type,
            self.key_size,
            self.value_size,
            self.max_entries,
            self.flags,
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// One program of the object.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramCode {
    /// The symbol name aya loads the program by.
    pub name: String,
    /// The section name; its first `/` component decides the program type in aya, e.g.
    /// `tracepoint/x`, `raw_tracepoint/x`, `uprobe/x`, `kprobe/x`, `perf_event/x`.
    pub section: String,
    pub insns: Vec<Insn>,
    /// `(instruction index of an LD_IMM64 first slot, map index)`.
    pub map_relocs: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Two maps or two programs share a symbol name.
    DuplicateSymbol(String),
    /// A name that cannot be a symbol (empty or containing NUL).
    BadName(String),
    /// A program without instructions (aya ignores empty executable sections).
    EmptyProgram(String),
    /// A relocation names a map index that does not exist.
    NoSuchMap {
        program: String,
        insn: usize,
        map: usize,
    },
    /// A relocation is not on the first slot of an `LD_IMM64`.
    NotLdImm64 { program: String, insn: usize },
    /// The `object` writer failed.
    Write(String),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::DuplicateSymbol(n) => write!(f, "duplicate symbol `{n}` in the eBPF object"),
            ElfError::BadName(n) => write!(f, "invalid symbol name {n:?} in the eBPF object"),
            ElfError::EmptyProgram(n) => write!(f, "program `{n}` has no instructions"),
            ElfError::NoSuchMap { program, insn, map } => {
                write!(
                    f,
                    "program `{program}` insn {insn}: relocation against unknown map #{map}"
                )
            }
            ElfError::NotLdImm64 { program, insn } => {
                write!(
                    f,
                    "program `{program}` insn {insn}: map relocation is not on an LD_IMM64"
                )
            }
            ElfError::Write(e) => write!(f, "writing the eBPF object: {e}"),
        }
    }
}

impl std::error::Error for ElfError {}

fn check_name(name: &str, seen: &mut HashSet<String>) -> Result<(), ElfError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ElfError::BadName(name.to_string()));
    }
    if !seen.insert(name.to_string()) {
        return Err(ElfError::DuplicateSymbol(name.to_string()));
    }
    Ok(())
}

fn global(name: &str, value: u64, size: u64, kind: SymbolKind, section: SymbolSection) -> Symbol {
    Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size,
        kind,
        // Dynamic = STB_GLOBAL with default visibility.
        scope: SymbolScope::Dynamic,
        weak: false,
        section,
        flags: SymbolFlags::None,
    }
}

/// Write the relocatable ELF object holding `maps` and `programs`.
pub fn write_object(maps: &[MapDef], programs: &[ProgramCode]) -> Result<Vec<u8>, ElfError> {
    let mut seen = HashSet::new();
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    let license = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.set_section_data(license, &b"GPL\0"[..], 1);

    let mut map_syms = Vec::with_capacity(maps.len());
    if !maps.is_empty() {
        let maps_sec = obj.add_section(Vec::new(), b"maps".to_vec(), SectionKind::Data);
        let mut data = Vec::with_capacity(maps.len() * MAP_DEF_SIZE);
        for m in maps {
            check_name(&m.name, &mut seen)?;
            if m.is_data() {
                let sec =
                    obj.add_section(Vec::new(), m.name.as_bytes().to_vec(), SectionKind::Data);
                obj.set_section_data(sec, vec![0u8; m.value_size as usize], 8);
                let sym = global(
                    &m.name,
                    0,
                    m.value_size as u64,
                    SymbolKind::Data,
                    SymbolSection::Section(sec),
                );
                map_syms.push(obj.add_symbol(sym));
                continue;
            }
            let off = data.len() as u64;
            data.extend_from_slice(&m.encode());
            let sym = global(
                &m.name,
                off,
                MAP_DEF_SIZE as u64,
                SymbolKind::Data,
                SymbolSection::Section(maps_sec),
            );
            map_syms.push(obj.add_symbol(sym));
        }
        obj.set_section_data(maps_sec, data, 4);
    }

    for p in programs {
        check_name(&p.name, &mut seen)?;
        if p.insns.is_empty() {
            return Err(ElfError::EmptyProgram(p.name.clone()));
        }
        let sec = obj.add_section(Vec::new(), p.section.as_bytes().to_vec(), SectionKind::Text);
        let code: Vec<u8> = p.insns.iter().flat_map(|i| i.encode()).collect();
        let size = code.len() as u64;
        obj.set_section_data(sec, code, 8);
        obj.add_symbol(global(
            &p.name,
            0,
            size,
            SymbolKind::Text,
            SymbolSection::Section(sec),
        ));
        for &(insn, map) in &p.map_relocs {
            let symbol = *map_syms.get(map).ok_or_else(|| ElfError::NoSuchMap {
                program: p.name.clone(),
                insn,
                map,
            })?;
            match p.insns.get(insn) {
                Some(i) if i.is_ld_imm64() && insn + 1 < p.insns.len() => {}
                _ => {
                    return Err(ElfError::NotLdImm64 {
                        program: p.name.clone(),
                        insn,
                    })
                }
            }
            let reloc = Relocation {
                offset: insn as u64 * 8,
                symbol,
                addend: 0,
                flags: RelocationFlags::Generic {
                    kind: RelocationKind::Absolute,
                    encoding: RelocationEncoding::Generic,
                    size: 64,
                },
            };
            obj.add_relocation(sec, reloc)
                .map_err(|e| ElfError::Write(e.to_string()))?;
        }
    }
    obj.write().map_err(|e| ElfError::Write(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{helper, map_type, Reg};
    use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};
    use object::{RelocationTarget, SymbolSection as RSymbolSection};

    fn sample() -> (Vec<MapDef>, Vec<ProgramCode>) {
        let maps = vec![
            MapDef {
                name: "events".into(),
                map_type: map_type::RINGBUF,
                key_size: 0,
                value_size: 0,
                max_entries: 1 << 16,
                flags: 0,
            },
            MapDef {
                name: "stats".into(),
                map_type: map_type::PERCPU_ARRAY,
                key_size: 4,
                value_size: 8,
                max_entries: 6,
                flags: 0,
            },
        ];
        let mut a = Vec::new();
        a.push(Insn::st_imm(crate::insn::Size::W, Reg::FP, -4, 0));
        a.push(Insn::mov64_reg(Reg::R2, Reg::FP));
        a.push(Insn::alu64_imm(crate::insn::AluOp::Add, Reg::R2, -4));
        a.extend(Insn::ld_map_fd(Reg::R1));
        a.push(Insn::call(helper::MAP_LOOKUP_ELEM));
        a.push(Insn::mov64_imm(Reg::R0, 0));
        a.push(Insn::exit());
        let mut b = Vec::new();
        b.extend(Insn::ld_map_fd(Reg::R1));
        b.extend(Insn::ld_map_fd(Reg::R6));
        b.push(Insn::mov64_imm(Reg::R0, 0));
        b.push(Insn::exit());
        let progs = vec![
            ProgramCode {
                name: "p_getppid".into(),
                section: "tracepoint/syscalls/sys_enter_getppid".into(),
                insns: a,
                map_relocs: vec![(3, 1)],
            },
            ProgramCode {
                name: "p_begin".into(),
                section: "uprobe/begin".into(),
                insns: b,
                map_relocs: vec![(0, 0), (2, 1)],
            },
        ];
        (maps, progs)
    }

    #[test]
    fn data_maps_get_their_own_zeroed_section_and_symbol() {
        let (mut maps, progs) = sample();
        maps.push(MapDef {
            name: ".data.globals".into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: 24,
            max_entries: 1,
            flags: 0,
        });
        let bytes = write_object(&maps, &progs).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let sec = file.section_by_name(".data.globals").unwrap();
        assert_eq!(sec.data().unwrap(), &[0u8; 24][..]);
        // Not a legacy map definition: the `maps` section holds only the other two.
        let msec = file.section_by_name("maps").unwrap();
        assert_eq!(msec.data().unwrap().len(), 2 * MAP_DEF_SIZE);
        let sym = file.symbol_by_name(".data.globals").unwrap();
        assert_eq!(sym.section(), RSymbolSection::Section(sec.index()));
        assert_eq!(sym.address(), 0);
    }

    #[test]
    fn object_reads_back() {
        let (maps, progs) = sample();
        let bytes = write_object(&maps, &progs).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        assert_eq!(file.architecture(), Architecture::Bpf);
        assert!(file.is_little_endian());
        assert_eq!(file.kind(), object::ObjectKind::Relocatable);
        let elf = object::read::elf::ElfFile64::<Endianness>::parse(&*bytes).unwrap();
        assert_eq!(
            elf.elf_header().e_machine.get(Endianness::Little),
            object::elf::EM_BPF
        );

        let lic = file.section_by_name("license").unwrap();
        assert_eq!(lic.data().unwrap(), b"GPL\0");
        let msec = file.section_by_name("maps").unwrap();
        assert_eq!(msec.size(), 56);
        assert_eq!(&msec.data().unwrap()[28..48], &maps[1].encode()[..20]);

        // Symbols in `maps`: exactly the two map objects, no section symbol.
        let in_maps: Vec<_> = file
            .symbols()
            .filter(|s| s.section() == RSymbolSection::Section(msec.index()))
            .collect();
        assert_eq!(in_maps.len(), 2);
        for (s, m) in in_maps.iter().zip(&maps) {
            assert_eq!(s.name().unwrap(), m.name);
            assert_eq!(s.kind(), SymbolKind::Data);
            assert_eq!(s.size(), 28);
            assert!(s.is_global());
        }

        for p in &progs {
            let sec = file.section_by_name(&p.section).unwrap();
            assert_eq!(sec.kind(), SectionKind::Text);
            assert_eq!(sec.size(), p.insns.len() as u64 * 8);
            let flags = match sec.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags,
                _ => unreachable!(),
            };
            assert_ne!(flags & u64::from(object::elf::SHF_EXECINSTR), 0);
            let sym = file.symbol_by_name(&p.name).unwrap();
            assert_eq!(sym.kind(), SymbolKind::Text);
            assert_eq!(sym.size(), p.insns.len() as u64 * 8);
            assert_eq!(sym.address(), 0);
            assert!(sym.is_global());
            assert_eq!(sym.section(), RSymbolSection::Section(sec.index()));
            // Code round-trips.
            let code = sec.data().unwrap();
            for (i, insn) in p.insns.iter().enumerate() {
                assert_eq!(
                    Insn::decode(code[i * 8..i * 8 + 8].try_into().unwrap()),
                    *insn
                );
            }
            let relocs: Vec<_> = sec.relocations().collect();
            assert_eq!(relocs.len(), p.map_relocs.len());
            for ((off, r), &(insn, map)) in relocs.iter().zip(&p.map_relocs) {
                assert_eq!(*off, insn as u64 * 8);
                assert_eq!(
                    r.flags(),
                    RelocationFlags::Elf {
                        r_type: object::elf::R_BPF_64_64
                    }
                );
                assert!(r.has_implicit_addend());
                let RelocationTarget::Symbol(si) = r.target() else {
                    panic!()
                };
                assert_eq!(
                    file.symbol_by_index(si).unwrap().name().unwrap(),
                    maps[map].name
                );
            }
        }
        // REL, not RELA.
        assert!(file.section_by_name(".reluprobe/begin").is_some());
    }

    #[test]
    fn bad_relocations_are_rejected() {
        let (maps, mut progs) = sample();
        progs[0].map_relocs = vec![(0, 0)];
        assert!(matches!(
            write_object(&maps, &progs),
            Err(ElfError::NotLdImm64 { insn: 0, .. })
        ));
        progs[0].map_relocs = vec![(3, 7)];
        assert!(matches!(
            write_object(&maps, &progs),
            Err(ElfError::NoSuchMap { map: 7, .. })
        ));
        let (maps, mut progs) = sample();
        progs[1].name = "events".into();
        assert_eq!(
            write_object(&maps, &progs),
            Err(ElfError::DuplicateSymbol("events".into()))
        );
    }
}
