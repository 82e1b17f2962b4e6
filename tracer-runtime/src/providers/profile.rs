//! The profile provider: `profile-N[unit]` fires on every CPU, `tick-N[unit]` on one.
//! Units as in DTrace: ns, us, ms, s, m, h, d, hz (the default is hz).

use super::Pattern;
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::probes::{ArgSource, ResolvedProbe};

/// The probes DTrace lists for `-l`.
pub fn list() -> Vec<ProbeDesc> {
    let mut out = Vec::new();
    for n in ["97", "199", "499", "997", "1999", "4001", "4999"] {
        out.push(desc(&format!("profile-{n}")));
    }
    for n in ["1", "10", "100", "500", "1000", "5000", "1s", "10s"] {
        out.push(desc(&format!("tick-{n}")));
    }
    out
}

fn desc(name: &str) -> ProbeDesc {
    ProbeDesc {
        id: 0,
        provider: "profile".into(),
        module: String::new(),
        function: String::new(),
        name: name.into(),
    }
}

/// Parse `profile-997`, `tick-10ms`, … into (all CPUs, period ns or frequency).
pub fn parse(name: &str) -> Result<Option<(bool, Attach)>, String> {
    let (all, rest) = if let Some(r) = name.strip_prefix("profile-") {
        (true, r)
    } else if let Some(r) = name.strip_prefix("tick-") {
        (false, r)
    } else {
        return Ok(None);
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (num, unit) = rest.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid profile probe {name}: expected a number"))?;
    if n == 0 {
        return Err(format!(
            "invalid profile probe {name}: the rate must be positive"
        ));
    }
    let ns = |mult: u64| Attach::Perf {
        period_ns: Some(n * mult),
        frequency: None,
        all_cpus: all,
    };
    let attach = match unit {
        "" | "hz" => Attach::Perf {
            period_ns: None,
            frequency: Some(n),
            all_cpus: all,
        },
        "ns" | "nsec" => ns(1),
        "us" | "usec" => ns(1_000),
        "ms" | "msec" => ns(1_000_000),
        "s" | "sec" => ns(1_000_000_000),
        "m" | "min" => ns(60_000_000_000),
        "h" | "hour" => ns(3_600_000_000_000),
        "d" | "day" => ns(86_400_000_000_000),
        other => {
            return Err(format!(
                "invalid profile probe {name}: unknown unit \"{other}\""
            ))
        }
    };
    if let Attach::Perf {
        period_ns: Some(p), ..
    } = attach
    {
        if p < 10_000 {
            return Err(format!(
                "invalid profile probe {name}: the interval must be at least 10us"
            ));
        }
    }
    Ok(Some((all, attach)))
}

pub fn resolve(p: &Pattern) -> Result<Vec<ResolvedProbe>, String> {
    if !(p.provider.is_empty() || super::glob_match(&p.provider, "profile")) {
        return Ok(Vec::new());
    }
    if !p.module.is_empty() && p.module != "*" || !p.function.is_empty() && p.function != "*" {
        return Ok(Vec::new());
    }
    // A concrete name is created on demand, as DTrace does; a glob only matches listed ones.
    let names: Vec<String> = if p.name.contains(['*', '?', '[']) || p.name.is_empty() {
        list()
            .into_iter()
            .map(|d| d.name)
            .filter(|n| p.name.is_empty() || super::glob_match(&p.name, n))
            .collect()
    } else {
        vec![p.name.clone()]
    };
    let mut out = Vec::new();
    for name in names {
        if let Some((_, attach)) = parse(&name)? {
            out.push(ResolvedProbe {
                desc: desc(&name),
                attach,
                args: ArgSource::Profile,
                sites: Vec::new(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(
            parse("profile-997").unwrap().unwrap().1,
            Attach::Perf {
                period_ns: None,
                frequency: Some(997),
                all_cpus: true
            }
        );
        assert_eq!(
            parse("tick-1s").unwrap().unwrap().1,
            Attach::Perf {
                period_ns: Some(1_000_000_000),
                frequency: None,
                all_cpus: false
            }
        );
        assert_eq!(
            parse("tick-10ms").unwrap().unwrap().1,
            Attach::Perf {
                period_ns: Some(10_000_000),
                frequency: None,
                all_cpus: false
            }
        );
        assert!(parse("tick-5parsecs").is_err());
        assert!(parse("BEGIN").unwrap().is_none());
    }
}
