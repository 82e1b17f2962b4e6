//! Compiling the script, and compiling it again when the target maps a library: a `-Z`
//! description of the target that matched nothing (`pid$target:libfoo.so::entry`,
//! `hotspot$target:::gc-begin`) is matched again, and the script is compiled with what it
//! matches now. Every other description resolves to what it did the first time, so the
//! programs already running keep their numbers (see `ProbeResolver::late`); the runtime
//! attaches only the new programs, against the maps of the running session.

use crate::providers::Resolver;
use std::collections::HashMap;
use std::rc::Rc;
use tracer_common::{CompiledScript, Options};
use tracer_lang::btf::KernelTypes;
use tracer_lang::diag::{SourceLine, SourceMap};
use tracer_lang::lower::{
    self, names_process, CompileError, CompileInput, Compiled, MapSpec, Scope,
};
use tracer_lang::probes::{ProbeResolver, ResolvedProbe};
use tracer_lang::syntax::ast;

/// Everything a compile needs besides the resolver, kept for compiling again.
pub struct Compiler {
    pub script: ast::Script,
    pub sources: SourceMap,
    pub options: Options,
    pub macro_args: Vec<String>,
    pub target: Option<u32>,
    pub zero_ok: bool,
    pub kernel_types: Rc<KernelTypes>,
    pub scope: Scope,
    pub boot_to_wall_ns: i64,
}

impl Compiler {
    pub fn compile(&self, resolver: &mut dyn ProbeResolver) -> Result<Compiled, CompileError> {
        let line_of = |span: ast::Span| SourceLine::of(&self.sources, span).pack();
        let task_offsets = || crate::kernel_offsets::task_offsets(&self.kernel_types);
        let ns_offsets = || crate::kernel_offsets::ns_offsets(&self.kernel_types);
        let input = CompileInput {
            script: &self.script,
            options: self.options.clone(),
            macro_args: self.macro_args.clone(),
            target: self.target,
            allow_zero_matches: self.zero_ok,
            line_of: &line_of,
            boot_to_wall_ns: self.boot_to_wall_ns,
            task_offsets: &task_offsets,
            kernel_types: &self.kernel_types,
            // Hash maps stay preallocated. Without preallocation every store to a dynamic
            // variable allocates a new element (and an aggregation key its per-CPU value)
            // from a per-CPU cache that the kernel refills asynchronously, so bursts of
            // updates fail with ENOMEM: in qemu, thread-local counters stopped counting (6.1,
            // 7.2) and aggregation keys went missing (6.1, 6.12). Faster start-up is not
            // worth wrong answers.
            no_prealloc: false,
            attach_cookies: crate::host::kernel_at_least(5, 15),
            preempt_guard: crate::host::kernel_at_least(5, 12),
            scope: self.scope,
            ns_offsets: &ns_offsets,
        };
        lower::compile(&input, resolver)
    }
}

/// The key a probe is known by across compiles: its name and where it attaches.
fn key(p: &ResolvedProbe) -> String {
    format!("{}|{:?}", p.desc.full_name(), p.attach)
}

/// The resolver of every compile: the first one asks the providers and remembers; later ones
/// ask again only for the descriptions of the target that matched nothing.
pub struct Tracking {
    pub inner: Resolver,
    /// What each description matched the first time.
    first: HashMap<String, Vec<ResolvedProbe>>,
    /// Descriptions of the target that matched nothing the first time.
    pending: Vec<String>,
    /// What each pending description matches now.
    now: HashMap<String, Vec<ResolvedProbe>>,
    /// The compile that first found each late probe.
    found_in: HashMap<String, u32>,
    /// 0 during the first compile.
    generation: u32,
}

impl Tracking {
    pub fn new(inner: Resolver) -> Tracking {
        Tracking {
            inner,
            first: HashMap::new(),
            pending: Vec::new(),
            now: HashMap::new(),
            found_in: HashMap::new(),
            generation: 0,
        }
    }

    /// Match the pending descriptions again. True when something new matched; the errors
    /// name their description.
    fn rematch(&mut self) -> (bool, Vec<String>) {
        let next = self.generation + 1;
        let mut new = false;
        let mut errors = Vec::new();
        for d in self.pending.clone() {
            match self.inner.resolve(&d) {
                Ok(found) => {
                    for p in &found {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            self.found_in.entry(key(p))
                        {
                            e.insert(next);
                            new = true;
                        }
                    }
                    self.now.insert(d, found);
                }
                Err(e) => errors.push(format!("cannot match {d} in the libraries loaded: {e}")),
            }
        }
        if new {
            self.generation = next;
        }
        (new, errors)
    }
}

impl ProbeResolver for Tracking {
    fn resolve(&mut self, description: &str) -> Result<Vec<ResolvedProbe>, String> {
        if self.generation == 0 {
            let found = self.inner.resolve(description)?;
            let pid = self.inner.target;
            if found.is_empty() && pid.is_some_and(|pid| names_process(description, pid)) {
                self.pending.push(description.to_string());
            }
            self.first.insert(description.to_string(), found.clone());
            return Ok(found);
        }
        if let Some(found) = self.now.get(description) {
            return Ok(found.clone());
        }
        Ok(self.first.get(description).cloned().unwrap_or_default())
    }

    fn late(&self, probe: &ResolvedProbe) -> u32 {
        self.found_in.get(&key(probe)).copied().unwrap_or(0)
    }
}

/// Whether a map a late program uses is one of the running session's: the same, or for
/// the per-CPU scratch, no larger (the first compile left room, see
/// `PENDING_SCRATCH_SLACK`).
fn fits(m: &MapSpec, running: &[MapSpec]) -> bool {
    use tracer_common::script::MapNames;
    running.iter().any(|r| {
        r == m
            || (r.name == m.name
                && (m.name == MapNames::SCRATCH || m.name == MapNames::SCRATCH_NMI)
                && (r.map_type, r.key_size, r.max_entries)
                    == (m.map_type, m.key_size, m.max_entries)
                && m.value_size <= r.value_size)
    })
}

/// The runtime's [`crate::LateProbes`]: compile again with what the pending
/// descriptions match now.
pub struct Late<'a> {
    pub compiler: &'a Compiler,
    pub resolver: &'a mut Tracking,
    /// The maps of the first compile: a later one must declare the same.
    pub maps: Vec<MapSpec>,
}

impl crate::LateProbes for Late<'_> {
    fn pending(&self) -> Vec<String> {
        self.resolver.pending.clone()
    }

    fn refresh(&mut self, notice: &mut dyn FnMut(&str)) -> Option<CompiledScript> {
        let (new, errors) = self.resolver.rematch();
        for e in errors {
            notice(&e.to_string());
        }
        for n in self.resolver.inner.take_notices() {
            notice(&n);
        }
        if !new {
            return None;
        }
        let compiled = self.compiler.compile(self.resolver);
        for n in self.resolver.inner.take_notices() {
            notice(&n);
        }
        match compiled {
            Ok(c) if c.maps.iter().all(|m| fits(m, &self.maps)) => Some(c.script),
            Ok(c) => {
                let differ: Vec<&str> = c
                    .maps
                    .iter()
                    .filter(|m| !fits(m, &self.maps))
                    .map(|m| m.name.as_str())
                    .collect();
                notice(&format!(
                    "failed to enable {}: their programs need maps the running ones do not have ({})",
                    self.resolver.pending.join(", "),
                    differ.join(", ")
                ));
                None
            }
            Err(e) => {
                notice(&format!(
                    "failed to enable {}: {}",
                    self.resolver.pending.join(", "),
                    e.message
                ));
                None
            }
        }
    }
}
