//! Probe resolution: a probe description (`syscall::read:entry`, `tick-1s`, bpftrace's
//! `tracepoint:sched:sched_switch`) becomes the probes it matches, each with how it attaches
//! and how its arguments are read. One module per provider.

mod dtrace;
mod fbt;
mod glob;
pub mod golang;
mod insn_bounds;
mod pid;
mod profile;
mod stable;
mod syscall;
pub mod tracefs;
mod tracepoint;
mod usdt;
mod usdt_args;

pub use glob::glob_match;
pub use pid::ReturnMethod;

use tracer_common::ProbeDesc;
use tracer_lang::btf::KernelTypes;
use tracer_lang::probes::{ProbeResolver, ResolvedProbe};

/// The four fields of a DTrace probe description; empty means "any".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern {
    pub provider: String,
    pub module: String,
    pub function: String,
    pub name: String,
}

impl Pattern {
    /// Parse `p:m:f:n` with fields omitted from the left, translating bpftrace's names.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if let Some(p) = bpftrace_alias(text)? {
            return Ok(p);
        }
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() > 4 {
            return Err(format!(
                "invalid probe description \"{text}\": too many fields"
            ));
        }
        let mut f = vec![""; 4 - parts.len()];
        f.extend(parts);
        Ok(Pattern {
            provider: f[0].into(),
            module: f[1].into(),
            function: f[2].into(),
            name: f[3].into(),
        })
    }

    pub fn matches(&self, d: &ProbeDesc) -> bool {
        let m = |pat: &str, s: &str| pat.is_empty() || glob_match(pat, s);
        m(&self.provider, &d.provider)
            && m(&self.module, &d.module)
            && m(&self.function, &d.function)
            && m(&self.name, &d.name)
    }
}

/// bpftrace probe names as aliases for the providers tracer has.
fn bpftrace_alias(text: &str) -> Result<Option<Pattern>, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let pat = |p: &str, m: &str, f: &str, n: &str| {
        Some(Pattern {
            provider: p.into(),
            module: m.into(),
            function: f.into(),
            name: n.into(),
        })
    };
    Ok(match parts.as_slice() {
        ["tracepoint" | "t", cat, name] => pat("tracepoint", cat, "", name),
        ["profile" | "p", unit, n] => pat(
            "profile",
            "",
            "",
            &format!("profile-{n}{}", rate_unit(unit)?),
        ),
        ["interval" | "i", unit, n] => {
            pat("profile", "", "", &format!("tick-{n}{}", rate_unit(unit)?))
        }
        ["BEGIN"] | ["END"] => None,
        // kprobe/fentry are both fbt: the provider picks the cheapest way the kernel offers.
        ["kprobe" | "k" | "fentry" | "f", func] => pat("fbt", "", func, "entry"),
        ["kretprobe" | "kr" | "fexit" | "fr", func] => pat("fbt", "", func, "return"),
        ["kprobe" | "k" | "fentry" | "f", module, func] => pat("fbt", module, func, "entry"),
        ["kretprobe" | "kr" | "fexit" | "fr", module, func] => pat("fbt", module, func, "return"),
        // usdt:/path:provider:name and usdt:/path:name; the path goes in `module`.
        ["usdt" | "U", path, provider, name] => pat("usdt", path, provider, name),
        ["usdt" | "U", path, name] => pat("usdt", path, "", name),
        [kind @ ("kprobe" | "k" | "kretprobe" | "kr" | "fentry" | "f" | "fexit" | "fr"), ..] => {
            return Err(format!(
                "{kind} takes a function, or a module and a function: {kind}:FUNC or {kind}:MODULE:FUNC"
            ))
        }
        _ => None,
    })
}

fn rate_unit(unit: &str) -> Result<&'static str, String> {
    Ok(match unit {
        "hz" => "hz",
        "s" => "s",
        "ms" => "ms",
        "us" => "us",
        "ns" => "ns",
        other => {
            return Err(format!(
                "unknown rate unit \"{other}\" (use hz, s, ms, us or ns)"
            ))
        }
    })
}

/// The resolver tracer uses: every provider, in DTrace's order.
#[derive(Default)]
pub struct Resolver {
    fbt: fbt::Fbt,
    /// Kernel BTF, shared with the compiler (read on first use).
    kernel: Option<std::rc::Rc<KernelTypes>>,
    /// The fbtmethod option: auto, kprobe or fentry.
    pub fbt_method: String,
    /// The pidreturn option: how pid return probes attach.
    pub pid_return: pid::ReturnMethod,
    syscalls: Option<Vec<String>>,
    /// Probe IDs by full name: the listed probes first, in listing order, then probes made
    /// on demand (profile-N, tracepoints), so `-l` and a run agree on every ID.
    ids: std::collections::HashMap<String, u32>,
    next_id: u32,
    /// The -p/-c process: `usdt:` paths are its probes only, and `-l` lists its USDT probes.
    pub target: Option<u32>,
    /// -Z: a description may match nothing, so "no USDT probe" is not an error with a hint.
    pub zero_ok: bool,
    /// Notices for the user found while resolving (probes skipped, risky attach methods).
    notices: Vec<String>,
}

impl Resolver {
    pub fn new() -> Resolver {
        Resolver::default()
    }

    /// A resolver that shares the compiler's kernel types.
    pub fn with_kernel_types(kernel: std::rc::Rc<KernelTypes>) -> Resolver {
        Resolver {
            kernel: Some(kernel),
            ..Resolver::default()
        }
    }

    /// What resolving found worth telling the user since the last call (the library prints
    /// nothing: the caller words them as `tracer: …`).
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut out = std::mem::take(&mut self.notices);
        out.append(&mut self.fbt.notices);
        out
    }

    /// A kernel function's signature from BTF (for `-lv`).
    pub fn kernel_signature(&mut self, func: &str) -> Option<tracer_lang::btf::FuncSig> {
        self.kernel_types().get()?.func(func)
    }

    fn kernel_types(&mut self) -> std::rc::Rc<KernelTypes> {
        self.kernel
            .get_or_insert_with(|| std::rc::Rc::new(KernelTypes::system()))
            .clone()
    }

    fn syscall_names(&mut self) -> Result<&[String], String> {
        if self.syscalls.is_none() {
            self.syscalls = Some(syscall::list()?);
        }
        Ok(self.syscalls.as_deref().unwrap())
    }

    /// The probes every run knows without asking the kernel about tracepoints.
    fn base_list(&mut self) -> Vec<ProbeDesc> {
        let mut out = dtrace::list();
        out.extend(profile::list());
        out.extend(stable::list());
        if let Ok(names) = self.syscall_names() {
            out.extend(syscall::list_probes(names));
        }
        out
    }

    /// The stable ID of a probe (see `ids`).
    fn id_of(&mut self, d: &ProbeDesc) -> u32 {
        if self.ids.is_empty() {
            for (i, b) in self.base_list().iter().enumerate() {
                self.ids.insert(b.full_name(), i as u32 + 1);
            }
            self.next_id = self.ids.len() as u32 + 1;
        }
        if let Some(id) = self.ids.get(&d.full_name()) {
            return *id;
        }
        // fbt IDs follow the kernel's symbol list, so a run and any `-l` agree on them
        // whatever else each asked for.
        if d.provider == "fbt" && !d.function.is_empty() {
            if let Some(id) = self.fbt.id(&d.function, d.name == "return") {
                self.ids.insert(d.full_name(), id);
                return id;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(d.full_name(), id);
        id
    }

    /// Every probe for `-l`, optionally filtered by a pattern (tracepoints only when asked for).
    pub fn list(&mut self, pattern: Option<&Pattern>) -> Result<Vec<ProbeDesc>, String> {
        let mut out = self.base_list();
        let want_tp = pattern
            .is_some_and(|p| !p.provider.is_empty() && glob_match(&p.provider, "tracepoint"));
        if want_tp {
            out.extend(tracepoint::list()?);
        }
        let want_fbt =
            pattern.is_some_and(|p| !p.provider.is_empty() && glob_match(&p.provider, "fbt"));
        if want_fbt {
            out.extend(self.fbt.list()?);
        }
        let mut out: Vec<ProbeDesc> = out
            .into_iter()
            .filter(|d| pattern.is_none_or(|p| p.matches(d)))
            .collect();
        // Already matched (a `usdt:/path` pattern names the file, not the module).
        out.extend(usdt::list(pattern, self.target)?);
        // `pidNNN:…` lists the functions of that process's modules, as a run would match them
        // (a return probe with several return instructions is one probe).
        if let Some(p) = pattern.filter(|p| {
            p.provider
                .strip_prefix("pid")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        }) {
            let mut seen = std::collections::HashSet::new();
            for r in pid::resolve_with(p, self.pid_return, &mut self.notices)? {
                if seen.insert(r.desc.full_name()) {
                    out.push(r.desc);
                }
            }
        }
        for d in out.iter_mut() {
            d.id = self.id_of(d);
        }
        Ok(out)
    }
}

impl ProbeResolver for Resolver {
    fn resolve(&mut self, description: &str) -> Result<Vec<ResolvedProbe>, String> {
        // bpftrace's uprobe:/path:func: the path may itself hold colons, the function is last.
        if let Some((kind, rest)) = description.split_once(':') {
            if matches!(kind, "uprobe" | "u" | "uretprobe" | "ur") {
                let (path, func) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{description}: expected {kind}:/path:function"))?;
                let mut out =
                    pid::resolve_bpftrace(kind, path, func, self.pid_return, &mut self.notices)?;
                self.assign_ids(&mut out);
                return Ok(out);
            }
        }
        let pat = Pattern::parse(description)?;
        let mut out = Vec::new();
        out.extend(dtrace::resolve(&pat));
        out.extend(profile::resolve(&pat)?);
        if pat.provider.is_empty() || glob_match(&pat.provider, "syscall") {
            // Without tracefs there are no syscall probes; that is an error only when the
            // description asks for the syscall provider by name.
            match self.syscall_names() {
                Ok(names) => {
                    let names = names.to_vec();
                    out.extend(syscall::resolve(&pat, &names)?);
                }
                Err(e) if pat.provider == "syscall" => return Err(e),
                Err(_) => {}
            }
        }
        if !pat.provider.is_empty() && glob_match(&pat.provider, "tracepoint") {
            out.extend(tracepoint::resolve(&pat)?);
        }
        if stable::applies(&pat.provider) {
            let kernel = self.kernel_types();
            out.extend(stable::resolve(&pat, &kernel)?);
        }
        if pat.provider.starts_with("pid") {
            out.extend(pid::resolve_with(&pat, self.pid_return, &mut self.notices)?);
        }
        if !pat.provider.is_empty() && glob_match(&pat.provider, "fbt") {
            let kernel = self.kernel_types();
            let method = if self.fbt_method.is_empty() {
                "auto".to_string()
            } else {
                self.fbt_method.clone()
            };
            out.extend(self.fbt.resolve(&pat, &kernel, &method)?);
        }
        if pat.provider == "usdt" {
            out.extend(usdt::resolve_path(&pat, self.target)?);
        } else if usdt::applies(&pat.provider) {
            let found = usdt::resolve(&pat, self.target, out.is_empty() && !self.zero_ok)?;
            out.extend(found);
        }
        self.assign_ids(&mut out);
        Ok(out)
    }
}

impl Resolver {
    /// Every probe's ID, and every site's of a probe that stands for many: the IDs `-l`
    /// lists.
    fn assign_ids(&mut self, probes: &mut [ResolvedProbe]) {
        for p in probes.iter_mut() {
            p.desc.id = self.id_of(&p.desc);
            for s in p.sites.iter_mut() {
                s.id = self.id_of(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fill_from_the_right() {
        let p = Pattern::parse("BEGIN").unwrap();
        assert_eq!(p.name, "BEGIN");
        assert!(p.provider.is_empty());
        let p = Pattern::parse("syscall::read:entry").unwrap();
        assert_eq!(
            (p.provider.as_str(), p.function.as_str(), p.name.as_str()),
            ("syscall", "read", "entry")
        );
        let p = Pattern::parse("tracepoint:sched:sched_switch").unwrap();
        assert_eq!(
            (p.provider.as_str(), p.module.as_str(), p.name.as_str()),
            ("tracepoint", "sched", "sched_switch")
        );
        let p = Pattern::parse("profile:hz:99").unwrap();
        assert_eq!(p.name, "profile-99hz");
        let p = Pattern::parse("interval:s:1").unwrap();
        assert_eq!(p.name, "tick-1s");
    }

    #[test]
    fn begin_resolves_to_the_dtrace_provider() {
        let mut r = Resolver::new();
        let ps = r.resolve("BEGIN").unwrap();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].desc.full_name(), "dtrace:::BEGIN");
        assert_eq!(r.resolve("dtrace:::END").unwrap()[0].desc.name, "END");
        assert!(r.resolve("::BEGIN:tick-1").unwrap().is_empty());
    }
}
