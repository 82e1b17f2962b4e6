//! From program text to a compiled script: parse every source, apply `-x` options and
//! pragmas, resolve the scope (host, pid namespace, cgroup), resolve probe descriptions and
//! compile. What compiled the script is kept, to compile it again when the target maps a
//! library later (see `late.rs`).

use crate::late::{Compiler, Tracking};
use crate::providers::{Resolver, ReturnMethod};
use crate::scope::ScopeArg;
use std::fmt;
use std::rc::Rc;
use tracer_common::Options;
use tracer_lang::btf::KernelTypes;
use tracer_lang::diag::{Diagnostic, SourceMap};
use tracer_lang::lower::Compiled;
use tracer_lang::syntax::{self, ast};

/// One piece of program text: a `-n` description/clause or a `-s` file.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file's path, or the description as given.
    pub name: String,
    pub text: String,
    pub from_file: bool,
}

/// What to compile and how.
pub struct Request {
    pub sources: Vec<Source>,
    /// Options from the command line (`-x`, `-q`, `-w`, `-b`); pragmas apply on top.
    pub options: Options,
    /// `$1`, `$2`, …: `$0` is the first source's name.
    pub args: Vec<String>,
    /// `$target`: the pid of `-c` or `-p`.
    pub target: Option<u32>,
    /// `-Z`: descriptions that match nothing are not an error.
    pub zero_ok: bool,
    pub scope: ScopeArg,
}

/// Why a script did not compile.
#[derive(Debug)]
pub enum PrepareError {
    /// No source was given.
    NoProbes,
    /// A script error, worded as dtrace(1) words it: where, what, and the source line with a
    /// caret.
    Script(String),
    /// The scope cannot be honoured (no BTF offsets, no such cgroup, …).
    Scope(String),
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::NoProbes => f.write_str("no probes specified"),
            PrepareError::Script(m) | PrepareError::Scope(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PrepareError {}

/// A compiled script, and what compiled it.
pub struct Prepared {
    pub compiled: Compiled,
    /// What compiled the script (its sources too), kept to compile it again with probes of
    /// libraries the target maps later.
    pub compiler: Compiler,
    pub resolver: Tracking,
    /// How notices name the script: `script 'x.d'` or `description 'syscall:::entry '`.
    pub notice_name: String,
    /// What is traced, for the notice on stderr (None: everything).
    pub scope_notice: Option<String>,
    /// The cgroup directory a cgroup scope's map holds by descriptor: open until the end.
    _scope_dir: Option<std::fs::File>,
}

/// Parse and compile every source of the request. What resolving the probes found worth
/// telling the user (probes skipped, risky attach methods) goes to `notice`, whether or not
/// the script compiles.
pub fn prepare(request: Request, notice: &mut dyn FnMut(&str)) -> Result<Prepared, PrepareError> {
    let src = request.sources;
    if src.is_empty() {
        return Err(PrepareError::NoProbes);
    }
    let mut sources = SourceMap::new();
    let mut script = ast::Script::default();
    for s in &src {
        let shown = if s.from_file {
            s.name.clone()
        } else {
            "-n".to_string()
        };
        let file = sources.add(shown, s.text.clone());
        match syntax::parse(file, &s.text) {
            Ok(sc) => script.items.extend(sc.items),
            Err(d) => return Err(script_error(&sources, &src, &d)),
        }
    }
    let mut macro_args = vec![src.first().map(|s| s.name.clone()).unwrap_or_default()];
    macro_args.extend(request.args);
    let opts = request.options;
    // `-x zdefs` and `#pragma D option zdefs` are -Z: the resolver must know before the
    // compiler applies the pragmas (a pragma's errors are reported by the compiler).
    let zero_ok = request.zero_ok || {
        let mut o = opts.clone();
        tracer_lang::lower::apply_pragmas(&script, &mut o).is_ok() && o.zdefs
    };
    let kernel_types = Rc::new(KernelTypes::system());
    let fbt_method = opts.fbtmethod.clone();
    let pid_return = ReturnMethod::parse(&opts.pidreturn);
    let scope =
        crate::scope::resolve(&request.scope, &kernel_types).map_err(PrepareError::Scope)?;
    let compiler = Compiler {
        script,
        sources,
        options: opts,
        macro_args,
        target: request.target,
        zero_ok,
        kernel_types: kernel_types.clone(),
        scope: scope.scope,
        boot_to_wall_ns: crate::host::boot_to_wall_ns(),
    };
    let mut resolver = Resolver::with_kernel_types(kernel_types);
    resolver.fbt_method = fbt_method;
    resolver.pid_return = pid_return;
    resolver.target = request.target;
    resolver.zero_ok = zero_ok;
    let mut resolver = Tracking::new(resolver);
    let compiled = compiler.compile(&mut resolver);
    for n in resolver.inner.take_notices() {
        notice(&n);
    }
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            let d = Diagnostic::error(e.span, e.message);
            return Err(script_error(&compiler.sources, &src, &d));
        }
    };
    let notice_name = match src.as_slice() {
        [s] if s.from_file => format!("script '{}'", s.name),
        [s] => format!("description '{}'", description_head(&s.text)),
        _ => "script".into(),
    };
    Ok(Prepared {
        compiled,
        compiler,
        resolver,
        notice_name,
        scope_notice: scope.notice,
        _scope_dir: scope.cgroup_dir,
    })
}

/// A compile error as dtrace(1) words it: where, what, and the source line with a caret.
fn script_error(sources: &SourceMap, src: &[Source], d: &Diagnostic) -> PrepareError {
    let file = d.span.file as usize;
    let what = match src.get(file) {
        Some(s) if s.from_file => format!("failed to compile script {}", s.name),
        Some(s) => format!("invalid probe specifier {}", s.name.trim()),
        None => "failed to compile script".into(),
    };
    let (line, col) = sources.line_col(d.span);
    let mut m = format!("{what}: line {line}:{col}: {}\n", d.message);
    // The rendered snippet repeats the message first; keep only the location and caret.
    let rendered = d.render(sources);
    let snippet: Vec<&str> = rendered.lines().skip(d.message.lines().count()).collect();
    m.push_str(snippet.join("\n").trim_end());
    PrepareError::Script(m)
}

/// A `-n` argument as DTrace names it in notices: cut at the first `{`, `/` or `;`.
pub fn description_head(text: &str) -> String {
    let end = text.find(['{', ';']).unwrap_or(text.len());
    let head = &text[..end];
    // A predicate starts with a `/` outside a path; a path starts with `:/` (uprobe:/bin/x:f)
    // and runs to the next `:`.
    let mut cut = head.len();
    let b = head.as_bytes();
    let mut in_path = false;
    for i in 0..b.len() {
        match b[i] {
            b'/' if i > 0 && b[i - 1] == b':' => in_path = true,
            b':' => in_path = false,
            b'/' if !in_path => {
                cut = i;
                break;
            }
            _ => {}
        }
    }
    head[..cut].to_string()
}
