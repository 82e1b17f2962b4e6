//! Semantic analysis: the types sema gives expressions and variables before lowering, and
//! the errors it reports, against the fake kernel BTF of `common`.

use tracer_common::{Attach, Options, ProbeDesc};
use tracer_lang::btf::KernelTypes;
use tracer_lang::lower::{compile, CompileError, CompileInput, Compiled, Scope};
use tracer_lang::probes::{ArgSource, ProbeResolver, ResolvedProbe, TpField};
use tracer_lang::sema::typeck::{ExprTypes, Typer};
use tracer_lang::sema::vars::{decide, ClauseTyping, VarTypes};
use tracer_lang::syntax::{self, ast};
use tracer_lang::types::Type;

mod common;
use common::{fake_btf, fake_task};

fn kernel() -> KernelTypes {
    KernelTypes::new(|| Some(fake_btf()))
}

fn task_ptr() -> Type {
    Type::Ptr(Box::new(fake_task()))
}

fn clauses(script: &ast::Script) -> Vec<&ast::Clause> {
    script
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Clause(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The variable types sema decides for `src`, every clause typed against `args`.
fn var_types(src: &str, args: &ArgSource) -> VarTypes {
    let script = syntax::parse(0, src).expect("parses");
    let cs = clauses(&script);
    let typing: Vec<ClauseTyping> = cs
        .iter()
        .map(|clause| ClauseTyping { clause, args })
        .collect();
    decide(&script, &typing, &kernel()).expect("types")
}

#[test]
fn char_array_member_makes_a_string_variable() {
    let v = var_types("BEGIN { x = curthread->comm; }", &ArgSource::None);
    assert_eq!(v.globals["x"], Type::Str);
}

#[test]
fn cast_pointer_types_a_thread_local() {
    let v = var_types(
        "BEGIN { self->p = (struct task_struct *)curthread; y = self->p->pid; }",
        &ArgSource::None,
    );
    assert_eq!(v.thread["p"], (vec![], task_ptr()));
    assert_eq!(v.globals["y"], Type::INT);
}

#[test]
fn a_vague_variable_takes_a_later_typed_pointer() {
    let v = var_types(
        "BEGIN { this->t = arg0; } BEGIN { this->t = curthread; z = this->t->real_parent; }",
        &ArgSource::None,
    );
    assert_eq!(v.this["t"], task_ptr());
    assert_eq!(v.globals["z"], task_ptr());
}

#[test]
fn assoc_keys_and_values_are_typed() {
    let v = var_types(
        "BEGIN { a[execname, curthread->pid] = curthread->comm; c = 'a'; }",
        &ArgSource::None,
    );
    assert_eq!(v.assocs["a"], (vec![Type::Str, Type::INT], Type::Str));
    // Integers narrower than int are stored as int.
    assert_eq!(v.globals["c"], Type::INT);
}

#[test]
fn args_have_the_probe_types() {
    let fbt = ArgSource::Fbt {
        params: vec![("p".into(), task_ptr())],
        ret_type: Type::INT,
        ret: false,
        fentry: true,
    };
    let v = var_types("BEGIN { t = args[0]; n = args[0]->comm; }", &fbt);
    assert_eq!(v.globals["t"], task_ptr());
    assert_eq!(v.globals["n"], Type::Str);
    let tp = ArgSource::Tracepoint {
        fields: vec![TpField {
            name: "prev_comm".into(),
            offset: 8,
            size: 16,
            ty: Type::Str,
            data_loc: false,
        }],
    };
    let v = var_types("BEGIN { s = args->prev_comm; }", &tp);
    assert_eq!(v.globals["s"], Type::Str);
}

#[test]
fn every_subexpression_is_recorded() {
    let e = syntax::parse_expr(0, "curthread->comm[1] + strlen(execname)").unwrap();
    let vars = VarTypes::default();
    let k = kernel();
    let typer = Typer {
        kernel: &k,
        vars: &vars,
        args: &ArgSource::None,
    };
    let mut types = ExprTypes::default();
    assert_eq!(typer.record(&e, &mut types), Type::ULONG);
    let ast::ExprKind::Binary { lhs, rhs, .. } = &e.node else {
        panic!("{e:?}")
    };
    let char_ = Type::Int {
        size: 1,
        signed: true,
    };
    assert_eq!(types.get(lhs), Some(&char_));
    assert_eq!(types.get(rhs), Some(&Type::ULONG));
    assert_eq!(types.len(), 7);
}

// ---------------------------------------------------------------- through the compiler

struct BeginOnly;

impl ProbeResolver for BeginOnly {
    fn resolve(&mut self, description: &str) -> Result<Vec<ResolvedProbe>, String> {
        if description != "BEGIN" {
            return Ok(Vec::new());
        }
        Ok(vec![ResolvedProbe {
            desc: ProbeDesc {
                id: 0,
                provider: "dtrace".into(),
                module: String::new(),
                function: String::new(),
                name: "BEGIN".into(),
            },
            attach: Attach::Trigger {
                symbol: "BEGIN".into(),
            },
            args: ArgSource::None,
            sites: Vec::new(),
        }])
    }
}

fn compile_text(src: &str) -> Result<Compiled, CompileError> {
    let script = syntax::parse(0, src).expect("parses");
    let kernel = kernel();
    let input = CompileInput {
        script: &script,
        options: Options::default(),
        macro_args: vec!["test.d".into()],
        target: None,
        allow_zero_matches: false,
        line_of: &|_| 1,
        boot_to_wall_ns: 0,
        task_offsets: &|| None,
        preempt_guard: true,
        kernel_types: &kernel,
        check_format: &|_, _, _| Ok(()),
        no_prealloc: false,
        scope: Scope::Host,
        ns_offsets: &|| None,
        attach_cookies: false,
    };
    compile(&input, &mut BeginOnly)
}

#[test]
fn kernel_typed_variables_compile() {
    compile_text("BEGIN { x = curthread->comm; trace(x); }").expect("string variable");
    compile_text("BEGIN { self->p = (struct task_struct *)curthread; trace(self->p->pid); }")
        .expect("pointer thread-local");
}

#[test]
fn bad_arity_is_reported_at_the_call() {
    let src = "BEGIN { x = 1; y = strlen(\"a\", \"b\"); }";
    let e = compile_text(src).err().expect("an arity error");
    assert_eq!(
        e.message,
        "strlen( ) prototype mismatch: 2 arguments passed, 1 expected"
    );
    assert_eq!(
        &src[e.span.start as usize..e.span.end as usize],
        "strlen(\"a\", \"b\")"
    );
    let src = "BEGIN { trace(substr(\"abc\")); }";
    let e = compile_text(src).err().expect("an arity error");
    assert_eq!(e.message, "substr( ) takes 2 or 3 arguments");
    assert_eq!(
        &src[e.span.start as usize..e.span.end as usize],
        "substr(\"abc\")"
    );
}

#[test]
fn existing_messages_keep_their_wording() {
    let e = compile_text("BEGIN { exit(x); }").err().unwrap();
    assert_eq!(e.message, "failed to resolve x: Unknown variable name");
    let e = compile_text("BEGIN { x = 1; x = \"s\"; }").err().unwrap();
    assert_eq!(
        e.message,
        "cannot assign a string to a variable of type int"
    );
}

#[test]
fn argument_classes_come_from_the_signature() {
    let src = "BEGIN { n = strlen(1); }";
    let e = compile_text(src).err().expect("a class error");
    assert_eq!(e.message, "expected a string argument");
    assert_eq!(&src[e.span.start as usize..e.span.end as usize], "1");
    let src = "BEGIN { s = lltostr(execname); }";
    let e = compile_text(src).err().expect("a class error");
    assert_eq!(e.message, "operand must be an integer, not a string");
    assert_eq!(&src[e.span.start as usize..e.span.end as usize], "execname");
}

#[test]
fn conditional_branches_agree() {
    let src = "BEGIN { x = pid ? execname : 1; }";
    let e = compile_text(src).err().expect("a branch error");
    assert_eq!(
        e.message,
        "both branches of ?: must be strings or both integers"
    );
    assert_eq!(
        &src[e.span.start as usize..e.span.end as usize],
        "pid ? execname : 1"
    );
}

#[test]
fn an_unknown_name_is_reported_before_a_type_error() {
    let e = compile_text("BEGIN { n = strlen(y); }").err().unwrap();
    assert_eq!(e.message, "failed to resolve y: Unknown variable name");
}

#[test]
fn zero_frees_a_dynamic_string() {
    compile_text("BEGIN { self->s = execname; self->s = 0; a[1] = execname; a[1] = 0; }")
        .expect("0 frees a dynamic variable");
    let e = compile_text("BEGIN { s = execname; s = 0; }")
        .err()
        .unwrap();
    assert_eq!(
        e.message,
        "cannot assign a int to a variable of type string"
    );
}

#[test]
fn sizeof_a_member_is_its_declared_size() {
    let e = syntax::parse_expr(0, "curthread->comm").unwrap();
    let vars = VarTypes::default();
    let k = kernel();
    let typer = Typer {
        kernel: &k,
        vars: &vars,
        args: &ArgSource::None,
    };
    assert_eq!(typer.ty(&e), Type::Str);
    assert_eq!(typer.object(&e).storage_size(256), 16);
}
