//! One program for many uprobes. `pid$target::*:entry` on python3.11 matches thousands of
//! functions; a program per probe would mean thousands of verifier runs. Probes of one pid
//! provider, module and name, running the same clauses with the same arguments, compile to
//! the same code but for `probefunc` and `id`: they share one program, attached at every
//! site with the site's probe index as its BPF cookie (`bpf_get_attach_cookie`, 5.15+). The
//! program looks the site up in a hash map the runtime fills (probe index → probe id and
//! function name) and writes the index into the record header, so output names each site.

use super::{Lower, MapSpec};
use crate::probes::{ArgSource, ResolvedProbe};
use tracer_common::Attach;
use tracer_ebpf::insn::{helper, map_type, JmpOp, Size};
use tracer_ebpf::ir::{Inst, MapId, Operand, VReg};

/// The map of shared sites: u32 probe index → u32 probe id, u32 return-instruction offset
/// (arg0 of a return site, else 0), then the function name.
pub const SITES_MAP: &str = "pid_sites";

/// Fewer probes than this in a group keep a program each (no map, no lookups).
const MIN_SHARED: usize = 2;

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
        if members.len() >= MIN_SHARED {
            for &m in members {
                out[m] = members[0];
            }
        }
    }
    out
}

/// Decide which plans share a program (`leaders`, see there) and note them in `g`.
/// A late plan (see `ProbeResolver::late`) keeps a program of its own: the sites map of the
/// running programs is sized already.
pub(crate) fn plan(
    g: &mut super::Globals,
    plans: &[(&ResolvedProbe, &[usize])],
    late: &[bool],
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
    for (pi, &l) in leaders.iter().enumerate() {
        if l != pi {
            g.shared.insert(l as u32);
        }
    }
    g.shared_sites = leaders
        .iter()
        .filter(|&&l| g.shared.contains(&(l as u32)))
        .count() as u32;
    leaders
}

/// The runtime's entries of the sites map: each shared site's probe id and function name.
pub(crate) fn map_init(
    g: &super::Globals,
    leaders: &[usize],
    probes: &[&ResolvedProbe],
) -> tracer_common::MapInit {
    let sites: Vec<(u32, u32, u32, String)> = leaders
        .iter()
        .enumerate()
        .filter(|(_, &l)| g.shared.contains(&(l as u32)))
        .map(|(pi, _)| {
            let ret_offset = match &probes[pi].args {
                ArgSource::Regs {
                    ret_offset: Some(o),
                    ..
                } => *o,
                _ => 0,
            };
            (
                pi as u32,
                probes[pi].desc.id,
                ret_offset,
                probes[pi].desc.function.clone(),
            )
        })
        .collect();
    tracer_common::MapInit {
        map: SITES_MAP.into(),
        entries: site_entries(&sites, g.opts.strsize),
    }
}

/// The map entries for the shared sites: (probe index, id, return offset, function name).
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
    /// True when this program serves several uprobe sites.
    pub(crate) fn shared_sites(&self) -> bool {
        self.g.shared.contains(&self.probe_index)
    }

    fn sites_map(&mut self) -> MapId {
        if let Some(i) = self.g.maps.iter().position(|m| m.name == SITES_MAP) {
            return MapId(i as u32);
        }
        let n = self.g.shared_sites.max(1);
        let value_size = 8 + self.g.opts.strsize;
        self.g.add_map(MapSpec {
            name: SITES_MAP.into(),
            map_type: map_type::HASH,
            key_size: 4,
            value_size,
            max_entries: n,
        })
    }

    /// The probe index of this firing (the cookie the runtime attached the site with).
    pub(crate) fn site_index(&mut self) -> VReg {
        let c = self.f.call(
            helper::GET_ATTACH_COOKIE,
            vec![tracer_ebpf::ir::Function::CTX.into()],
        );
        self.f
            .alu(tracer_ebpf::insn::AluOp::And, c, Operand::Imm(0xffff_ffff))
    }

    /// This site's entry in the sites map (0 when missing, which the runtime never lets be).
    fn site_entry(&mut self) -> VReg {
        let m = self.sites_map();
        let idx = self.site_index();
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
        let name = self
            .f
            .alu(tracer_ebpf::insn::AluOp::Add, p, Operand::Imm(8));
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

    /// `id` of a shared program: the site's probe id.
    pub(crate) fn site_id(&mut self) -> VReg {
        let p = self.site_entry();
        let out = self.f.imm(0);
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
            covers: 1,
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
