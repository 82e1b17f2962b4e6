//! Kernel tracepoints: `tracepoint:CATEGORY:NAME` (bpftrace's form) and
//! `tracepoint:CATEGORY::NAME`, with `args[i]` typed from the event's format.

use super::{glob_match, Pattern};
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::probes::{ArgSource, ResolvedProbe};

fn desc(category: &str, name: &str) -> ProbeDesc {
    ProbeDesc {
        id: 0,
        provider: "tracepoint".into(),
        module: category.into(),
        function: String::new(),
        name: name.into(),
    }
}

pub fn list() -> Result<Vec<ProbeDesc>, String> {
    let dir = super::tracefs::root()?.join("events");
    let mut out = Vec::new();
    let mut cats: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .collect();
    cats.sort_by_key(|e| e.file_name());
    for cat in cats {
        if !cat.path().is_dir() {
            continue;
        }
        let c = cat.file_name().to_string_lossy().to_string();
        let mut evs: Vec<_> = std::fs::read_dir(cat.path())
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .collect();
        evs.sort_by_key(|e| e.file_name());
        for ev in evs {
            out.push(desc(&c, &ev.file_name().to_string_lossy()));
        }
    }
    Ok(out)
}

pub fn resolve(p: &Pattern) -> Result<Vec<ResolvedProbe>, String> {
    let has_glob = |s: &str| s.is_empty() || s.contains(['*', '?', '[']);
    let candidates = if has_glob(&p.module) || has_glob(&p.name) {
        list()?
    } else {
        vec![desc(&p.module, &p.name)]
    };
    let mut out = Vec::new();
    for d in candidates {
        if !(p.module.is_empty() || glob_match(&p.module, &d.module))
            || !(p.name.is_empty() || glob_match(&p.name, &d.name))
        {
            continue;
        }
        let fields = match super::tracefs::format(&d.module, &d.name) {
            Ok(f) => f,
            Err(_) => continue,
        };
        out.push(ResolvedProbe {
            attach: Attach::Tracepoint {
                category: d.module.clone(),
                name: d.name.clone(),
            },
            desc: d,
            args: ArgSource::Tracepoint { fields },
            sites: Vec::new(),
        });
    }
    Ok(out)
}
