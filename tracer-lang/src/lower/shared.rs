//! Programs that stand for many probes, and the site table that names the probe that fired.
//!
//! The resolver makes `syscall:::entry` one raw_syscalls program and a large fbt glob one
//! kprobe_multi program; here the compiler makes pid probes share a program:
//! `pid$target::*:entry` on python3.11 matches thousands of functions, and a program per
//! probe would mean thousands of verifier runs. Probes of one pid provider, module and name,
//! running the same clauses with the same arguments, compile to the same code but for
//! `probefunc` and `id`: they share one program, attached at every site with the site's
//! probe index as its BPF cookie (`bpf_get_attach_cookie`, 5.15+). See
//! [`Sharing`](crate::probes::Sharing) for the policy.
//!
//! Whatever the kind, every probe a shared program stands for is a *site*: it has its own
//! entry in `CompiledScript::probes` (with the ID `-l` lists), and in the kernel its index
//! there names it. The program finds its site index (the cookie, or the syscall number
//! through `syscall_sites`), looks the site up in the `sites` map the runtime fills (site →
//! probe id, return offset, function name) for `id` and `probefunc`, and writes the index + 1
//! into the record header, so output names each site.

use super::{Lower, MapSpec};
use crate::probes::{ArgSource, ResolvedProbe, Sharing};
use tracer_common::{Attach, MapNames};
use tracer_ebpf::insn::{helper, map_type, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, MapId, Operand, VReg};

/// The site table of a compile: which programs stand for many probes, and their sites.
#[derive(Debug, Default)]
pub(crate) struct SiteTable {
    /// Programs (by their probe's index in `CompiledScript::probes`) that stand for many
    /// probes: how, and for raw_syscalls the first key of its block in `syscall_sites`.
    pub programs: std::collections::HashMap<u32, (Sharing, u32)>,
    /// The `sites` map: (site, probe id, return offset, function name).
    pub entries: Vec<(u32, u32, u32, String)>,
    /// The `syscall_sites` map: (base + syscall number, site + 1).
    pub syscall_keys: Vec<(u32, u32)>,
    /// Keys of `syscall_sites` (a block of the syscall table's length per program).
    pub syscall_len: u32,
}

fn share_key(p: &ResolvedProbe, clauses: &[usize]) -> Option<String> {
    match (&p.attach, &p.args) {
        (
            Attach::Uprobe {
                ret,
                pid,
                ref_ctr_offset: None,
                ..
            },
            ArgSource::PtRegs { .. },
        ) => Some(format!(
            "{}:{}:{}:{ret}:{pid:?}:{clauses:?}",
            p.desc.provider, p.desc.module, p.desc.name
        )),
        // Sites with the same argument locations (every function of Go's register ABI, every
        // return instruction) compile alike: arg0 of a return site comes from the map.
        (
            Attach::Uprobe {
                ret,
                pid,
                ref_ctr_offset: None,
                ..
            },
            ArgSource::Regs { args, ret_offset },
        ) => Some(format!(
            "{}:{}:{}:{ret}:{pid:?}:{clauses:?}:{args:?}:{}",
            p.desc.provider,
            p.desc.module,
            p.desc.name,
            ret_offset.is_some()
        )),
        _ => None,
    }
}

/// For every plan, the plan whose program it uses (itself when it has its own).
pub(crate) fn leaders(plans: &[(&ResolvedProbe, &[usize])], cookies: bool) -> Vec<usize> {
    let mut out: Vec<usize> = (0..plans.len()).collect();
    if !cookies {
        return out;
    }
    let mut groups: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for (i, (p, c)) in plans.iter().enumerate() {
        if let Some(k) = share_key(p, c) {
            groups.entry(k).or_default().push(i);
        }
    }
    for members in groups.values() {
        if Sharing::uprobes(members.len(), cookies) == Sharing::Uprobes {
            for &m in members {
                out[m] = members[0];
            }
        }
    }
    out
}

/// Decide which plans share a program (`leaders`, see there) and build the site table in
/// `g.sites`. `slot` is a plan's index in `CompiledScript::probes`; the sites of raw_syscalls
/// and kprobe_multi probes get the indexes from `first_site` on, in plan order.
/// A late plan (see `ProbeResolver::late`) keeps a program of its own: the sites map of the
/// running programs is sized already.
pub(crate) fn plan(
    g: &mut super::ScriptState,
    plans: &[(&ResolvedProbe, &[usize])],
    late: &[bool],
    slot: &dyn Fn(usize) -> u32,
    first_site: u32,
) -> Vec<usize> {
    let early: Vec<(&ResolvedProbe, &[usize])> = plans
        .iter()
        .zip(late)
        .map(|(p, &l)| if l { (p.0, &[][..]) } else { *p })
        .collect();
    let mut leaders = leaders(&early, g.input.attach_cookies);
    for (pi, &l) in late.iter().enumerate() {
        if l {
            leaders[pi] = pi;
        }
    }
    let t = &mut g.sites;
    let nsys = tracer_common::syscalls::table().len() as u32;
    let mut group = vec![0usize; plans.len()];
    for &l in &leaders {
        group[l] += 1;
    }
    let mut next_site = first_site;
    for (pi, &(p, _)) in plans.iter().enumerate() {
        if group[leaders[pi]] > 1 {
            t.programs.insert(slot(leaders[pi]), (Sharing::Uprobes, 0));
            let ret_offset = match &p.args {
                ArgSource::Regs {
                    ret_offset: Some(o),
                    ..
                } => *o,
                _ => 0,
            };
            t.entries
                .push((slot(pi), p.desc.id, ret_offset, p.desc.function.clone()));
            continue;
        }
        if !p.stands_for_many() {
            continue;
        }
        let kind = match p.attach {
            Attach::KprobeMulti { .. } => Sharing::KprobeMulti,
            _ => Sharing::RawSyscalls,
        };
        let base = t.syscall_len;
        if kind == Sharing::RawSyscalls {
            t.syscall_len += nsys;
        }
        t.programs.insert(slot(pi), (kind, base));
        for s in &p.sites {
            let site = next_site;
            next_site += 1;
            t.entries.push((site, s.id, 0, s.function.clone()));
            if kind == Sharing::RawSyscalls {
                if let Some(nr) = tracer_common::syscalls::table()
                    .iter()
                    .position(|n| *n == s.function)
                {
                    t.syscall_keys.push((base + nr as u32, site + 1));
                }
            }
        }
    }
    leaders
}

/// The runtime's entries of the `sites` and `syscall_sites` maps, for those declared.
pub(crate) fn map_init(g: &super::ScriptState) -> Vec<tracer_common::MapInit> {
    let mut out = Vec::new();
    if g.maps.iter().any(|m| m.name == MapNames::SITES) {
        out.push(tracer_common::MapInit {
            map: MapNames::SITES.into(),
            entries: site_entries(&g.sites.entries, g.opts.strsize),
        });
    }
    if g.maps.iter().any(|m| m.name == MapNames::SYSCALL_SITES) {
        out.push(tracer_common::MapInit {
            map: MapNames::SYSCALL_SITES.into(),
            entries: g
                .sites
                .syscall_keys
                .iter()
                .map(|(k, v)| (k.to_ne_bytes().to_vec(), v.to_ne_bytes().to_vec()))
                .collect(),
        });
    }
    out
}

/// The map entries for the sites: (site, id, return offset, function name).
fn site_entries(sites: &[(u32, u32, u32, String)], strsize: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    sites
        .iter()
        .map(|(pi, id, ret_offset, name)| {
            let mut v = vec![0u8; 8 + strsize as usize];
            v[..4].copy_from_slice(&id.to_ne_bytes());
            v[4..8].copy_from_slice(&ret_offset.to_ne_bytes());
            let n = name.len().min(strsize as usize - 1);
            v[8..8 + n].copy_from_slice(&name.as_bytes()[..n]);
            (pi.to_ne_bytes().to_vec(), v)
        })
        .collect()
}

impl Lower<'_, '_> {
    /// True when this program stands for many probes (see `SiteTable`).
    pub(crate) fn shared_sites(&self) -> bool {
        self.g.sites.programs.contains_key(&self.probe_index)
    }

    fn sites_map(&mut self) -> MapId {
        if let Some(i) = self.g.maps.iter().position(|m| m.name == MapNames::SITES) {
            return MapId(i as u32);
        }
        let n = (self.g.sites.entries.len() as u32).max(1);
        let value_size = 8 + self.g.opts.strsize;
        self.g.add_map(MapSpec {
            name: MapNames::SITES.into(),
            map_type: map_type::HASH,
            key_size: 4,
            value_size,
            max_entries: n,
        })
    }

    fn syscall_sites_map(&mut self) -> MapId {
        if let Some(i) = self
            .g
            .maps
            .iter()
            .position(|m| m.name == MapNames::SYSCALL_SITES)
        {
            return MapId(i as u32);
        }
        let n = self.g.sites.syscall_len.max(1);
        self.g.add_map(MapSpec {
            name: MapNames::SYSCALL_SITES.into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: n,
        })
    }

    /// The record header's site word of this firing: its site index + 1, 0 when the
    /// probe that fired is not one of the program's sites (a syscall without a probe).
    pub(crate) fn site_word(&mut self) -> VReg {
        let (kind, base) = self.g.sites.programs[&self.probe_index];
        if kind != Sharing::RawSyscalls {
            // The attach cookie is the site index.
            let c = self.f.call(
                helper::GET_ATTACH_COOKIE,
                vec![tracer_ebpf::ir::Function::CTX.into()],
            );
            let c = self.f.alu(AluOp::And, c, Operand::Imm(0xffff_ffff));
            return self.f.alu(AluOp::Add, c, Operand::Imm(1));
        }
        // The syscall number at ctx+8, in this program's block of `syscall_sites`.
        let m = self.syscall_sites_map();
        let nr = self.f.load(tracer_ebpf::ir::Function::CTX, 8, Size::DW);
        let key = self.f.alu(AluOp::Add, nr, Operand::Imm(base as i64));
        let keyoff = self.temp(8);
        let keyp = self.scratch_ptr(keyoff);
        self.f.store(keyp, 0, key, Size::W);
        let m = self.f.map_ptr(m);
        let p = self
            .f
            .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), keyp.into()]);
        let out = self.f.imm(0);
        let done = self.f.label();
        self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), done);
        let w = self.f.load(p, 0, Size::W);
        self.f.push(Inst::Mov {
            dst: out,
            src: w.into(),
        });
        self.f.push(Inst::Label(done));
        out
    }

    /// This site's entry in the sites map (0 when the firing has no site).
    fn site_entry(&mut self) -> VReg {
        let m = self.sites_map();
        let word = self.site_word();
        // Site word 0 becomes key 0xffffffff, which no site has.
        let idx = self.f.alu(AluOp::Add, word, Operand::Imm(-1));
        let keyoff = self.temp(8);
        let key = self.scratch_ptr(keyoff);
        self.f.store(key, 0, idx, Size::W);
        let m = self.f.map_ptr(m);
        self.f
            .call(helper::MAP_LOOKUP_ELEM, vec![m.into(), key.into()])
    }

    /// `probefunc` of a shared program: the site's function name.
    pub(crate) fn site_func(&mut self) -> VReg {
        let strsize = self.g.opts.strsize;
        let off = self.temp(strsize);
        let buf = self.scratch_ptr(off);
        let p = self.site_entry();
        let found = self.f.label();
        let done = self.f.label();
        self.f.branch(JmpOp::Jne, p, Operand::Imm(0), found);
        self.f.store(buf, 0, Operand::Imm(0), Size::DW);
        self.f.push(Inst::Jump(done));
        self.f.push(Inst::Label(found));
        let name = self.f.alu(AluOp::Add, p, Operand::Imm(8));
        self.f.push(Inst::MemCopy {
            dst: buf,
            src: name,
            len: strsize,
        });
        self.f.push(Inst::Label(done));
        buf
    }

    /// arg0 of a shared return-instruction program: the site's offset in its function.
    pub(crate) fn site_ret_offset(&mut self) -> VReg {
        let p = self.site_entry();
        let out = self.f.imm(0);
        let done = self.f.label();
        self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), done);
        let off = self.f.load(p, 4, Size::W);
        self.f.push(Inst::Mov {
            dst: out,
            src: off.into(),
        });
        self.f.push(Inst::Label(done));
        out
    }

    /// `id` of a shared program: the site's probe id (the program's own without a site).
    pub(crate) fn site_id(&mut self) -> VReg {
        let p = self.site_entry();
        let out = self.f.imm(self.probe.desc.id as i64);
        let done = self.f.label();
        self.f.branch(JmpOp::Jeq, p, Operand::Imm(0), done);
        let id = self.f.load(p, 0, Size::W);
        self.f.push(Inst::Mov {
            dst: out,
            src: id.into(),
        });
        self.f.push(Inst::Label(done));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{UsdtArg, UsdtLoc};
    use tracer_common::ProbeDesc;

    fn ret_site(func: &str, offset: u64, ret_offset: Option<u32>) -> ResolvedProbe {
        ResolvedProbe {
            desc: ProbeDesc {
                id: 0,
                provider: "pid1".into(),
                module: "a.out".into(),
                function: func.into(),
                name: "return".into(),
            },
            attach: Attach::Uprobe {
                path: "/bin/x".into(),
                offset,
                ret: false,
                pid: Some(1),
                ref_ctr_offset: None,
            },
            args: ArgSource::Regs {
                args: vec![UsdtArg {
                    size: 8,
                    signed: false,
                    loc: UsdtLoc::Reg { off: 80 },
                }],
                ret_offset,
            },
            sites: Vec::new(),
        }
    }

    #[test]
    fn return_sites_share_a_program_whatever_their_offsets() {
        let a = ret_site("f", 0x10, Some(4));
        let b = ret_site("f", 0x20, Some(20));
        let c = ret_site("g", 0x40, Some(8));
        // Same registers but not a return site: its own group.
        let d = ret_site("h", 0x80, None);
        let cl: &[usize] = &[0];
        let plans = [(&a, cl), (&b, cl), (&c, cl), (&d, cl)];
        assert_eq!(leaders(&plans, true), vec![0, 0, 0, 3]);
        assert_eq!(leaders(&plans, false), vec![0, 1, 2, 3]);
    }

    #[test]
    fn site_entries_carry_the_return_offset() {
        let e = site_entries(&[(3, 7, 0x44, "main.f".into())], 16);
        assert_eq!(e[0].0, 3u32.to_ne_bytes());
        assert_eq!(&e[0].1[..4], &7u32.to_ne_bytes());
        assert_eq!(&e[0].1[4..8], &0x44u32.to_ne_bytes());
        assert_eq!(&e[0].1[8..14], b"main.f");
    }
}
