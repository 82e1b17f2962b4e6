//! Step 1 of the compile: resolve every probe description into plans, one per probe, each
//! with the clauses that fire on it (DTrace's ECBs of one probe run in one program); number
//! the probes; and lay out `CompiledScript::probes`, where the sites of probes that stand for
//! many follow the first compile's plans.

use super::{pending, CompileError, CompileInput, Result};
use crate::probes::{ProbeResolver, ResolvedProbe};
use crate::syntax::ast;

/// One probe and the clauses (indexes into the script's clause list) that fire on it.
pub(crate) struct ProbePlan {
    pub probe: ResolvedProbe,
    pub clauses: Vec<usize>,
    /// Found after the first compile (see `ProbeResolver::late`): which compile found it.
    pub late: u32,
}

/// The probes the script's descriptions match, and how many probes they stand for (for the
/// `matched N probes` notice).
pub(crate) struct Plans {
    pub plans: Vec<ProbePlan>,
    pub matched: usize,
}

/// Resolve every clause's descriptions; a probe matched by several clauses gets one plan
/// running them in order. Probes found late and -Z placeholders go last.
pub(crate) fn resolve(
    input: &CompileInput,
    resolver: &mut dyn ProbeResolver,
    clauses: &[&ast::Clause],
) -> Result<Plans> {
    let mut plans: Vec<ProbePlan> = Vec::new();
    // Plans by probe name: thousands of pid probes must not be compared pairwise.
    let mut by_name: std::collections::HashMap<String, Vec<usize>> = Default::default();
    let mut matched = 0;
    let mut pending: Vec<(ResolvedProbe, usize)> = Vec::new();
    for (ci, clause) in clauses.iter().enumerate() {
        for desc in &clause.probes {
            let text = expand_description(&desc.node, input)
                .map_err(|e| CompileError::new(desc.span, e))?;
            let found = resolver
                .resolve(&text)
                .map_err(|e| CompileError::new(desc.span, e))?;
            if found.is_empty() && !input.allow_zero_matches {
                return Err(CompileError::new(
                    desc.span,
                    format!(
                        "probe description {} does not match any probes{}",
                        full_description(&text),
                        pending::hint(&text, input.target)
                    ),
                ));
            }
            if found.iter().all(|p| resolver.late(p) > 0) && input.allow_zero_matches {
                // -Z: the clause still compiles, against a probe that is never attached.
                pending.push((pending::probe(&text), ci));
            }
            // A USDT probe with several sites is one probe (one program per site).
            let mut seen = std::collections::HashSet::new();
            matched += found
                .iter()
                .filter(|p| seen.insert(p.desc.full_name()))
                .map(|p| p.sites.len().max(1))
                .sum::<usize>();
            for p in found {
                let same = by_name.entry(p.desc.full_name()).or_default();
                match same.iter().find(|&&i| plans[i].probe.attach == p.attach) {
                    Some(&i) => {
                        if !plans[i].clauses.contains(&ci) {
                            plans[i].clauses.push(ci)
                        }
                    }
                    None => {
                        same.push(plans.len());
                        let late = resolver.late(&p);
                        plans.push(ProbePlan {
                            probe: p,
                            clauses: vec![ci],
                            late,
                        })
                    }
                }
            }
        }
    }
    // Probe IDs come from the resolver (stable across -l and runs); a resolver that leaves
    // them 0 gets DTrace's order: BEGIN 1, END 2, ERROR 3, then the others.
    let order = |p: &ProbePlan| match p.probe.desc.name.as_str() {
        "BEGIN" if p.probe.desc.provider == "dtrace" => 0,
        "END" if p.probe.desc.provider == "dtrace" => 1,
        "ERROR" if p.probe.desc.provider == "dtrace" => 2,
        _ => 3,
    };
    if plans.iter().any(|p| p.probe.desc.id == 0) {
        plans.sort_by_key(order);
        let mut next_id = 4;
        for p in plans.iter_mut() {
            p.probe.desc.id = match order(p) {
                0 => 1,
                1 => 2,
                2 => 3,
                _ => {
                    next_id += 1;
                    next_id - 1
                }
            };
        }
        for s in plans.iter_mut().flat_map(|p| p.probe.sites.iter_mut()) {
            s.id = next_id;
            next_id += 1;
        }
    }
    // Probes found late go last, so that a later compile keeps the indexes of the probes
    // already running (their sites' among them).
    plans.sort_by_key(|p| (p.late > 0, p.probe.desc.id));
    // Placeholders last, numbered from the top, whatever the resolver's numbering.
    for (k, (mut probe, ci)) in pending.into_iter().enumerate() {
        probe.desc.id = u32::MAX - k as u32;
        plans.push(ProbePlan {
            probe,
            clauses: vec![ci],
            late: 0,
        });
    }

    Ok(Plans { plans, matched })
}

/// Expand `$target`, `$pid` and `$N` inside a probe description.
fn expand_description(text: &str, input: &CompileInput) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let n = tail
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(tail.len());
        let name = &tail[..n];
        out.push_str(&crate::sema::macros::macro_value(
            name,
            input.target,
            &input.macro_args,
        )?);
        rest = &tail[n..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where each plan's probe, and each site of a probe that stands for many, sits in
/// `CompiledScript::probes`: the first compile's plans, then every site, then the plans found
/// later (so a later compile never moves a running program's sites).
pub(crate) struct ProbeSlots {
    pub first_site: usize,
    nsites: usize,
    /// Per plan, the slots of its sites.
    pub site_range: Vec<std::ops::Range<u32>>,
}

impl ProbeSlots {
    pub fn new(plans: &[ProbePlan]) -> ProbeSlots {
        let first_site = plans
            .iter()
            .position(|p| {
                p.late > 0 || matches!(p.probe.attach, tracer_common::Attach::Pending { .. })
            })
            .unwrap_or(plans.len());
        let site_range = plans
            .iter()
            .scan(first_site as u32, |next, p| {
                let start = *next;
                *next += p.probe.sites.len() as u32;
                Some(start..*next)
            })
            .collect();
        ProbeSlots {
            first_site,
            nsites: plans.iter().map(|p| p.probe.sites.len()).sum(),
            site_range,
        }
    }

    /// The slot of plan `pi`'s own probe.
    pub fn slot(&self, pi: usize) -> u32 {
        (if pi < self.first_site {
            pi
        } else {
            pi + self.nsites
        }) as u32
    }

    /// `CompiledScript::probes`, in slot order.
    pub fn probes(&self, plans: &[ProbePlan]) -> Vec<tracer_common::ProbeDesc> {
        let mut probes: Vec<_> = plans[..self.first_site]
            .iter()
            .map(|p| p.probe.desc.clone())
            .collect();
        probes.extend(plans.iter().flat_map(|p| p.probe.sites.iter().cloned()));
        probes.extend(
            plans[self.first_site..]
                .iter()
                .map(|p| p.probe.desc.clone()),
        );
        probes
    }
}

/// The plans to lower, in script order (by each probe's first clause); ERROR has none.
pub(crate) fn lowering_order(plans: &[ProbePlan]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len())
        .filter(|&i| !is_error_probe(&plans[i].probe))
        .collect();
    order.sort_by_key(|&i| (plans[i].late, plans[i].clauses.iter().min().copied()));
    order
}

pub(crate) fn is_error_probe(p: &ResolvedProbe) -> bool {
    p.desc.provider == "dtrace" && p.desc.name == "ERROR"
}

/// `BEGIN` → `:::BEGIN` style for messages, as DTrace prints descriptions.
pub(crate) fn full_description(text: &str) -> String {
    let parts = text.matches(':').count();
    if parts >= 3 || text.contains('/') {
        text.to_string()
    } else {
        format!("{}{}", ":".repeat(3 - parts), text)
    }
}
