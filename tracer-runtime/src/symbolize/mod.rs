//! Addresses to names, for the whole run: kernel addresses through blazesym's kallsyms
//! source (cached per address), user addresses through [`UserSymbolizer`] (`user.rs`, with
//! JIT code named from perf maps in `perfmap.rs`), with the copies of a `-c` target's
//! mappings its waiter takes so that addresses stay readable after it exits. The decoder
//! asks; nothing here knows record layouts.

mod perfmap;
mod user;

pub use user::{format_sym, parse_maps, Backing, Mapping, UserSymbolizer};

use super::target::MapsCopy;
use blazesym::symbolize::source::{Kernel, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;
use std::collections::HashMap;
use std::path::Path;

/// Kernel and user symbolization with their caches: keep one for the whole session.
pub struct Symbols {
    symbolizer: Symbolizer,
    /// Kernel address → formatted symbol (kernel addresses repeat a lot in stacks).
    kcache: HashMap<u64, String>,
    /// User symbols: mappings remembered while processes were alive, files, perf maps.
    usyms: UserSymbolizer,
    /// Copies of a `-c` target's mappings that its waiter takes at exec and at the exit stop.
    copies: HashMap<u32, MapsCopy>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

/// ``mod`func+0x1c`` → ``mod`func`` (an unknown address stays hex): what `func()` and
/// `sym()` print.
pub fn without_offset(sym: String) -> String {
    match sym.rfind("+0x") {
        Some(i) if sym.contains('`') || !sym.starts_with("0x") => sym[..i].to_string(),
        _ => sym,
    }
}

/// `libc.so.6` for `/usr/lib/x86_64-linux-gnu/libc.so.6`.
fn module_basename(module: Option<&std::ffi::OsStr>) -> String {
    module
        .map(|m| {
            Path::new(m)
                .file_name()
                .unwrap_or(m)
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default()
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols {
            symbolizer: Symbolizer::new(),
            kcache: HashMap::new(),
            usyms: UserSymbolizer::new(),
            copies: HashMap::new(),
        }
    }

    /// Kernel addresses as ``module`func+0xoff`` (`vmlinux` for the core kernel), hex when
    /// unknown.
    pub fn kernel(&mut self, addrs: &[u64]) -> Vec<String> {
        let missing: Vec<u64> = addrs
            .iter()
            .copied()
            .filter(|a| !self.kcache.contains_key(a))
            .collect();
        if !missing.is_empty() {
            let src = Source::Kernel(Kernel {
                vmlinux: MaybeDefault::None,
                debug_syms: false,
                ..Default::default()
            });
            let syms = self
                .symbolizer
                .symbolize(&src, Input::AbsAddr(&missing))
                .ok();
            for (i, addr) in missing.iter().enumerate() {
                let text = match syms.as_ref().and_then(|s| s.get(i)) {
                    Some(Symbolized::Sym(sym)) => {
                        let mut module = module_basename(sym.module.as_deref());
                        module = module.trim_matches(|c| c == '[' || c == ']').to_string();
                        if module.is_empty() || module == "kallsyms" {
                            module = "vmlinux".into();
                        }
                        format_sym(&module, &sym.name, sym.offset as u64)
                    }
                    _ => format!("{addr:#x}"),
                };
                self.kcache.insert(*addr, text);
            }
        }
        addrs.iter().map(|a| self.kcache[a].clone()).collect()
    }

    /// Take the copies of `pid`'s mappings that its waiter makes while it is stopped: the one
    /// at its exit stop is the last word, whatever the periodic copies missed.
    pub fn follow_copies(&mut self, pid: u32, copy: MapsCopy) {
        self.copies.insert(pid, copy);
    }

    /// Remember a copy the waiter made since the last look, if any.
    fn absorb_copy(&mut self, pid: u32) {
        let Some(copy) = self.copies.get(&pid) else {
            return;
        };
        let text = copy.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(text) = text {
            self.keep_maps(pid, &text);
        }
    }

    /// Keep the mappings of a /proc/PID/maps text (an empty one changes nothing).
    fn keep_maps(&mut self, pid: u32, text: &str) {
        self.usyms.keep_maps(pid, text);
    }

    /// Keep a copy of `pid`'s file mappings, so that its addresses can still be symbolized
    /// after it exits (the `-c`/`-p` target usually has exited by the final dump).
    pub fn remember_process(&mut self, pid: u32) {
        // An older waiter copy must not overwrite the live read below.
        self.absorb_copy(pid);
        // Before its exec the `-c` child still maps tracer itself: nothing worth keeping.
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe.is_none() || exe == std::fs::read_link("/proc/self/exe").ok() {
            return;
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            self.keep_maps(pid, &text);
        }
    }

    /// User addresses of process `pid` as ``module`func+0xoff``, hex when unknown: through
    /// the live process's mappings, or a remembered copy of them once it has exited.
    pub fn user(&mut self, pid: u32, addrs: &[u64]) -> Vec<String> {
        if pid == 0 || addrs.is_empty() {
            return addrs.iter().map(|a| format!("{a:#x}")).collect();
        }
        self.absorb_copy(pid);
        self.usyms.syms(pid, addrs)
    }

    /// Symbolize these addresses of `pid` in one batch (one per file), so that later lookups
    /// are answered from the cache.
    pub fn prefetch(&mut self, pid: u32, addrs: &[u64]) {
        self.absorb_copy(pid);
        self.usyms.prefetch(pid, addrs);
    }
}
