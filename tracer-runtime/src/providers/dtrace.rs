//! The dtrace provider: BEGIN, END and ERROR.

use super::Pattern;
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::probes::{ArgSource, ResolvedProbe};

fn desc(name: &str) -> ProbeDesc {
    ProbeDesc {
        id: 0,
        provider: "dtrace".into(),
        module: String::new(),
        function: String::new(),
        name: name.into(),
    }
}

pub fn list() -> Vec<ProbeDesc> {
    ["BEGIN", "END", "ERROR"].iter().map(|n| desc(n)).collect()
}

pub fn resolve(p: &Pattern) -> Vec<ResolvedProbe> {
    list()
        .into_iter()
        .filter(|d| p.matches(d))
        .map(|d| ResolvedProbe {
            attach: Attach::Trigger {
                symbol: d.name.clone(),
            },
            args: if d.name == "ERROR" {
                ArgSource::Error
            } else {
                ArgSource::None
            },
            desc: d,
            sites: Vec::new(),
        })
        .collect()
}
