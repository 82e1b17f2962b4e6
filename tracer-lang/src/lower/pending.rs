//! Descriptions that matched nothing under `-Z`: their clauses compile against a placeholder
//! probe that is never attached (`Attach::Pending`), so what they declare exists, and the
//! runtime can enable probes of the target's later libraries (see tracer-cli's `late`).

use crate::probes::ResolvedProbe;

/// Extra per-CPU scratch bytes of a script with pending probes (see `compile`).
pub const PENDING_SCRATCH_SLACK: u32 = 1024;

/// The never-attached probe a `-Z` clause compiles against when its description matched
/// nothing: pid descriptions read registers, others as a USDT probe without arguments
/// (each `argN` reads 0).
pub(super) fn probe(text: &str) -> ResolvedProbe {
    let full = super::full_description(text);
    let mut f: Vec<&str> = full.splitn(4, ':').collect();
    f.resize(4, "");
    let args = if f[0].starts_with("pid") {
        crate::probes::ArgSource::PtRegs {
            ret: f[3] == "return",
        }
    } else {
        crate::probes::ArgSource::Usdt { args: Vec::new() }
    };
    ResolvedProbe {
        desc: tracer_common::ProbeDesc {
            id: 0,
            provider: f[0].into(),
            module: f[1].into(),
            function: f[2].into(),
            name: f[3].into(),
        },
        attach: tracer_common::Attach::Pending {
            description: text.to_string(),
        },
        args,
        sites: Vec::new(),
    }
}

/// The scratch size of a compile: the first compile of a script with pending probes leaves
/// room for the programs of probes found later, which share this scratch and may need a
/// little more than their placeholder did (temporaries for USDT arguments).
pub(super) fn scratch_with_slack<'a>(
    size: u32,
    plans: impl Iterator<Item = (&'a ResolvedProbe, u32)>,
) -> u32 {
    let (mut first, mut pending) = (true, false);
    for (p, late) in plans {
        first &= late == 0;
        pending |= matches!(p.attach, tracer_common::Attach::Pending { .. });
    }
    if first && pending {
        (size + PENDING_SCRATCH_SLACK).min(32 * 1024)
    } else {
        size
    }
}

/// Whether a description's provider names process `pid` (`pid123`, `hotspot123`).
pub fn names_process(description: &str, pid: u32) -> bool {
    let provider = description.split(':').next().unwrap_or("");
    let head = provider.trim_end_matches(|c: char| c.is_ascii_digit());
    !head.is_empty() && provider[head.len()..] == pid.to_string()
}

/// For a description of the target process that matched nothing: how to wait for a library
/// that brings its probes.
pub(crate) fn hint(text: &str, target: Option<u32>) -> &'static str {
    match target {
        Some(t) if names_process(text, t) => {
            " (yet: with -Z it is enabled when the process loads a library that has it)"
        }
        _ => "",
    }
}
