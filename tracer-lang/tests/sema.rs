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
        probe: None,
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
        probe: None,
    };
    assert_eq!(typer.ty(&e), Type::Str);
    assert_eq!(typer.object(&e).storage_size(256), 16);
}

/// The text `e` names in `src`.
fn at(src: &str, e: &CompileError) -> String {
    src[e.span.start as usize..e.span.end as usize].to_string()
}

#[test]
fn action_arity_is_reported_by_sema() {
    // Sema's own check, before lowering: the script is not lowered.
    let script = syntax::parse(0, "BEGIN { x = 1; trace(1, 2); }").unwrap();
    let e = tracer_lang::sema::check::script(&script).unwrap_err();
    assert_eq!(
        e.message,
        "trace( ) prototype mismatch: 2 arguments passed, 1 expected"
    );
    for (src, message, place) in [
        (
            "BEGIN { trace(1, 2); }",
            "trace( ) prototype mismatch: 2 arguments passed, 1 expected",
            "trace(1, 2)",
        ),
        (
            "BEGIN { exit(); }",
            "exit( ) prototype mismatch: 0 arguments passed, 1 expected",
            "exit()",
        ),
        (
            "BEGIN { @a = count(); trunc(@a, 1, 2); }",
            "trunc( ) prototype mismatch: 3 arguments passed, 1 to 2 expected",
            "trunc(@a, 1, 2)",
        ),
        (
            "BEGIN { @a = count(); normalize(@a); }",
            "normalize( ) prototype mismatch: 1 arguments passed, 2 expected",
            "normalize(@a)",
        ),
        (
            "BEGIN { printf(); }",
            "printf( ) requires a format string",
            "printf()",
        ),
        (
            "BEGIN { printa(\"%d\"); }",
            "printa( ) requires an aggregation after the format",
            "printa(\"%d\")",
        ),
        (
            "BEGIN { stack(1, 2, 3); }",
            "stack( ) takes at most 2 arguments",
            "stack(1, 2, 3)",
        ),
        (
            "BEGIN { stop(1); }",
            "stop( ) prototype mismatch: 1 arguments passed, 0 expected",
            "stop(1)",
        ),
    ] {
        let e = compile_text(src).err().expect(src);
        assert_eq!(e.message, message, "{src}");
        assert_eq!(at(src, &e), place, "{src}");
    }
}

#[test]
fn an_action_argument_class_is_checked_by_sema() {
    let src = "BEGIN { exit(execname); }";
    let e = compile_text(src).err().unwrap();
    assert_eq!(
        e.message,
        "exit( ) argument #1 is incompatible with prototype: it must be an integer"
    );
    assert_eq!(at(src, &e), "execname");
    compile_text("BEGIN { exit(pid > 0); }").expect("an integer");
}

#[test]
fn member_and_cast_errors_are_reported_by_sema_at_their_place() {
    for (src, start, place) in [
        (
            "BEGIN { x = 1; trace(curthread->nosuch); }",
            "struct task_struct has no member named nosuch; it has: ",
            "curthread->nosuch",
        ),
        (
            "BEGIN { y = curthread->real_parent->bogus + 1; }",
            "struct task_struct has no member named bogus",
            "curthread->real_parent->bogus",
        ),
        (
            "BEGIN { x = (struct task_struct)curthread; }",
            "cannot cast to struct task_struct; cast to a pointer (struct task_struct *) instead",
            "(struct task_struct)curthread",
        ),
        (
            "BEGIN { x = (int)execname; }",
            "cannot cast a string to int",
            "(int)execname",
        ),
    ] {
        // Sema's own check, against the probe's typer: lowering is not reached.
        let script = syntax::parse(0, src).unwrap();
        let vars = var_types(src, &ArgSource::None);
        let k = kernel();
        let typer = Typer {
            kernel: &k,
            vars: &vars,
            args: &ArgSource::None,
            probe: None,
        };
        let body = &clauses(&script)[0].body;
        let ast::Stmt::Expr(stmt) = &body[1.min(body.len() - 1)] else {
            panic!("{src}")
        };
        let e = tracer_lang::sema::check::typed(&typer, stmt).expect_err(src);
        assert!(e.message.starts_with(start), "{src}: {}", e.message);
        assert_eq!(at(src, &e), place, "{src}");
        // And through the compiler, the same.
        let e = compile_text(src).err().expect(src);
        assert!(e.message.starts_with(start), "{src}: {}", e.message);
        assert_eq!(at(src, &e), place, "{src}");
    }
}

#[test]
fn a_cast_pointer_thread_local_member_is_a_string() {
    let src = "BEGIN { self->p = (struct task_struct *)curthread; trace(self->p->comm); }";
    let vars = var_types(src, &ArgSource::None);
    let k = kernel();
    let typer = Typer {
        kernel: &k,
        vars: &vars,
        args: &ArgSource::None,
        probe: None,
    };
    let e = syntax::parse_expr(0, "self->p->comm").unwrap();
    assert_eq!(typer.ty(&e), Type::Str);
    compile_text(src).expect("traces a string");
}

#[test]
fn a_string_tested_for_truth_is_reported_by_sema() {
    let message = "a predicate must be a scalar, not a string (compare it with == or use strlen())";
    for (src, place) in [
        ("BEGIN /execname/ { exit(0); }", "execname"),
        ("BEGIN /pid && !execname/ { exit(0); }", "execname"),
        (
            "BEGIN { if (curthread->comm) { exit(0); } }",
            "curthread->comm",
        ),
        ("BEGIN { x = execname ? 1 : 2; }", "execname"),
        ("BEGIN { x = pid || execname; }", "execname"),
    ] {
        let e = compile_text(src).err().expect(src);
        assert_eq!(e.message, message, "{src}");
        assert_eq!(at(src, &e), place, "{src}");
    }
    // Sema's own check of a predicate.
    let src = "BEGIN /execname/ { exit(0); }";
    let script = syntax::parse(0, src).unwrap();
    let vars = var_types(src, &ArgSource::None);
    let k = kernel();
    let typer = Typer {
        kernel: &k,
        vars: &vars,
        args: &ArgSource::None,
        probe: None,
    };
    let pred = clauses(&script)[0].predicate.as_ref().unwrap();
    let e = tracer_lang::sema::check::condition(&typer, pred).unwrap_err();
    assert_eq!(e.message, message);
    compile_text("BEGIN /execname == \"init\" && pid/ { exit(0); }").expect("a comparison");
}

#[test]
fn args_index_errors_are_reported_by_sema() {
    let fbt = ArgSource::Fbt {
        params: vec![("p".into(), task_ptr())],
        ret_type: Type::INT,
        ret: false,
        fentry: true,
    };
    let desc = ProbeDesc {
        id: 1,
        provider: "fbt".into(),
        module: "vmlinux".into(),
        function: "wake_up_new_task".into(),
        name: "entry".into(),
    };
    let k = kernel();
    let vars = VarTypes::default();
    let typer = Typer {
        kernel: &k,
        vars: &vars,
        args: &fbt,
        probe: Some(&desc),
    };
    for (src, message, place) in [
        (
            "trace(args[1])",
            "index 1 is out of range for fbt:vmlinux:wake_up_new_task:entry args[ ]",
            "args[1]",
        ),
        ("x = args[pid]", "args[] needs a constant index", "pid"),
        ("x = 1 + args[0, 1]", "args[] takes one index", "args[0, 1]"),
    ] {
        let e = syntax::parse_expr(0, src).unwrap();
        let err = tracer_lang::sema::check::typed(&typer, &e).expect_err(src);
        assert_eq!(err.message, message, "{src}");
        assert_eq!(at(src, &err), place, "{src}");
    }
    let e = syntax::parse_expr(0, "trace(args[0])").unwrap();
    tracer_lang::sema::check::typed(&typer, &e).expect("in range");
}

#[test]
fn assoc_key_errors_are_reported_by_sema() {
    for (src, message, place) in [
        (
            "BEGIN { a[1, 2] = 1; x = a[3]; }",
            "expected 2 key(s), found 1",
            "a[3]",
        ),
        (
            "BEGIN { a[1] = 1; x = a[execname]; }",
            "key has the wrong type: expected int",
            "execname",
        ),
        (
            "BEGIN { self->t[execname] = 1; self->t[pid] = 2; }",
            "key has the wrong type: expected string",
            "pid",
        ),
    ] {
        let script = syntax::parse(0, src).unwrap();
        let vars = var_types(src, &ArgSource::None);
        let k = kernel();
        let typer = Typer {
            kernel: &k,
            vars: &vars,
            args: &ArgSource::None,
            probe: None,
        };
        let ast::Stmt::Expr(stmt) = &clauses(&script)[0].body[1] else {
            panic!("{src}")
        };
        let e = tracer_lang::sema::check::typed(&typer, stmt).expect_err(src);
        assert_eq!(e.message, message, "{src}");
        assert_eq!(at(src, &e), place, "{src}");
        let e = compile_text(src).err().expect(src);
        assert_eq!(e.message, message, "{src}");
        assert_eq!(at(src, &e), place, "{src}");
    }
}

#[test]
fn aggregation_arity_is_reported_by_sema() {
    for (src, message, place) in [
        (
            "BEGIN { @a = count(1); }",
            "count( ) prototype mismatch: 1 arguments passed",
            "count",
        ),
        (
            "BEGIN { @a[execname] = lquantize(pid, 0); }",
            "lquantize( ) prototype mismatch: 2 arguments passed",
            "lquantize",
        ),
        (
            "BEGIN { @a = frob(); }",
            "frob( ) is not an aggregating function",
            "frob",
        ),
    ] {
        let script = syntax::parse(0, src).unwrap();
        let e = tracer_lang::sema::check::script(&script).expect_err(src);
        assert_eq!(e.message, message, "{src}");
        assert_eq!(at(src, &e), place, "{src}");
        let e = compile_text(src).err().expect(src);
        assert_eq!(e.message, message, "{src}");
        assert_eq!(at(src, &e), place, "{src}");
    }
}
