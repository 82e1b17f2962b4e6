//! Parser tests: AST snapshots of a corpus of real D scripts, exact rendering of syntax errors,
//! probe-description lexing, and a no-panic check over every prefix of the corpus.

use std::path::PathBuf;
use tracer_lang::diag::SourceMap;
use tracer_lang::syntax::ast::*;
use tracer_lang::syntax::{parse, parse_expr};

fn corpus() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "d"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Parses `src` as `script.d` and renders the error.
fn err(src: &str) -> String {
    let mut sources = SourceMap::new();
    let file = sources.add("script.d", src);
    match parse(file, src) {
        Ok(script) => panic!("expected a syntax error, got {script:#?}"),
        Err(d) => d.render(&sources),
    }
}

fn ok(src: &str) -> Script {
    match parse(0, src) {
        Ok(s) => s,
        Err(d) => {
            let mut sources = SourceMap::new();
            sources.add("script.d", src);
            panic!("unexpected error:\n{}", d.render(&sources))
        }
    }
}

fn probes(src: &str) -> Vec<String> {
    ok(src)
        .items
        .into_iter()
        .flat_map(|i| match i {
            Item::Clause(c) => c.probes.into_iter().map(|p| p.node).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn clause(src: &str) -> Clause {
    match ok(src).items.into_iter().next() {
        Some(Item::Clause(c)) => c,
        other => panic!("not a clause: {other:?}"),
    }
}

#[test]
fn corpus_snapshots() {
    let files = corpus();
    assert!(files.len() >= 25, "corpus has only {} scripts", files.len());
    for (name, src) in files {
        let script = ok(&src);
        insta::with_settings!({ description => src.as_str(), omit_expression => true }, {
            insta::assert_debug_snapshot!(name.as_str(), script);
        });
    }
}

#[test]
fn no_panic_on_any_prefix() {
    for (_, src) in corpus() {
        for (i, _) in src.char_indices().chain(std::iter::once((src.len(), ' '))) {
            let _ = parse(0, &src[..i]);
        }
    }
}

#[test]
fn no_panic_on_deletions() {
    // Removing any one character must give a parse or a diagnostic, never a panic.
    for (_, src) in corpus() {
        for (i, c) in src.char_indices() {
            let mutated = format!("{}{}", &src[..i], &src[i + c.len_utf8()..]);
            if let Err(d) = parse(0, &mutated) {
                let mut sources = SourceMap::new();
                sources.add("x.d", mutated.as_str());
                assert!(d.render(&sources).contains("x.d:"));
            }
        }
    }
}

#[test]
fn probe_descriptions() {
    let all = [
        "BEGIN",
        "END",
        "ERROR",
        "dtrace:::BEGIN",
        "syscall::open*:entry",
        "syscall:::entry",
        "syscall::read:return",
        "tick-1s",
        "profile-997",
        "profile-10ms",
        "tick-100hz",
        ":::tick-1",
        "pid$target:a.out:main:entry",
        "pid$target::malloc:return",
        "pid1234:libc.so.6:*:entry",
        "python$target:::function-entry",
        "fbt::vfs_*:entry",
        "proc:::exec-success",
        "kprobe:do_sys_open",
        "kretprobe:vfs_read",
        "tracepoint:syscalls:sys_enter_openat",
        "uprobe:/bin/bash:readline",
        "uretprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc",
        "usdt:/usr/bin/python3.11:python:function__entry",
        "profile:hz:99",
        "interval:s:1",
        "fentry:vfs_read",
        "*:::entry",
        "syscall::[rw]*:entry",
    ];
    for p in all {
        assert_eq!(probes(&format!("{p} {{ }}")), [p], "{p} with a body");
        assert_eq!(
            probes(&format!("{p}\n/pid == 1/\n{{ x = 1; }}")),
            [p],
            "{p} with a predicate"
        );
        assert_eq!(probes(p), [p], "{p} alone");
        assert_eq!(
            probes(&format!("{p}/arg0/{{}}")),
            [p],
            "{p} with an unspaced predicate"
        );
    }
    assert_eq!(probes(&all.join(",\n")), all);
    assert_eq!(probes(&all.join(", ")), all);
}

#[test]
fn probe_description_spans_and_paths() {
    let c = clause("uprobe:/bin/bash:readline/pid == 1/{}");
    assert_eq!(c.probes[0].node, "uprobe:/bin/bash:readline");
    assert_eq!((c.probes[0].span.start, c.probes[0].span.end), (0, 25));
    assert!(c.predicate.is_some());
    // A `/` after a trailing `:` that does not lead to another `:` starts the predicate.
    let c = clause("syscall::read:/arg0/{}");
    assert_eq!(c.probes[0].node, "syscall::read:");
    assert!(c.predicate.is_some());
}

#[test]
fn predicate_end_versus_division() {
    let c = clause("BEGIN / a / b / 2 / { }");
    let Some(p) = c.predicate else {
        panic!("no predicate")
    };
    let ExprKind::Binary {
        op: BinOp::Div,
        lhs,
        ..
    } = &p.node
    else {
        panic!("{p:?}")
    };
    assert!(matches!(lhs.node, ExprKind::Binary { op: BinOp::Div, .. }));
    let c = clause("BEGIN /a/ /* comment */ { }");
    assert!(matches!(c.predicate.unwrap().node, ExprKind::Ident(_)));
    let c = clause("BEGIN /x/");
    assert!(c.predicate.is_some() && c.body.is_empty());
}

#[test]
fn casts_and_typedef_names() {
    let c = clause("BEGIN { a = (x) - 1; }");
    let Stmt::Expr(e) = &c.body[0] else { panic!() };
    let ExprKind::Assign { rhs, .. } = &e.node else {
        panic!()
    };
    assert!(
        matches!(rhs.node, ExprKind::Binary { op: BinOp::Sub, .. }),
        "{rhs:?}"
    );

    let s = ok("typedef int x; BEGIN { a = (x) - 1; }");
    let Item::Clause(c) = &s.items[1] else {
        panic!()
    };
    let Stmt::Expr(e) = &c.body[0] else { panic!() };
    let ExprKind::Assign { rhs, .. } = &e.node else {
        panic!()
    };
    let ExprKind::Cast { ty, expr } = &rhs.node else {
        panic!("{rhs:?}")
    };
    assert_eq!(ty.base, "x");
    assert!(matches!(expr.node, ExprKind::Unary { op: UnOp::Neg, .. }));

    let e = parse_expr(0, "(unsigned long long **)p").unwrap();
    let ExprKind::Cast { ty, .. } = &e.node else {
        panic!()
    };
    assert_eq!((ty.base.as_str(), ty.pointers), ("unsigned long long", 2));
    let e = parse_expr(0, "(const struct task_struct *)curthread").unwrap();
    let ExprKind::Cast { ty, .. } = &e.node else {
        panic!()
    };
    assert_eq!((ty.base.as_str(), ty.pointers), ("struct task_struct", 1));
}

#[test]
fn expressions() {
    let e = parse_expr(0, r#""a" "b" "\x41\101\n""#).unwrap();
    assert_eq!(e.node, ExprKind::Str("abAA\n".into()));
    let e = parse_expr(0, "$$1 + $target").unwrap();
    let ExprKind::Binary { lhs, rhs, .. } = &e.node else {
        panic!()
    };
    assert_eq!(lhs.node, ExprKind::MacroStr("1".into()));
    assert_eq!(rhs.node, ExprKind::Macro("target".into()));
    let e = parse_expr(0, "0x10UL").unwrap();
    assert_eq!(
        e.node,
        ExprKind::Int {
            value: 16,
            suffix: "ul".into()
        }
    );
    let e = parse_expr(0, "'\\n'").unwrap();
    assert_eq!(e.node, ExprKind::Char(b'\n'));
    let e = parse_expr(0, "printa(@)").unwrap();
    let ExprKind::Call { args, .. } = &e.node else {
        panic!()
    };
    assert_eq!(args[0].node, ExprKind::AggRef(String::new()));
    let e = parse_expr(0, "a ? b : c ? d : e").unwrap();
    let ExprKind::Cond { els, .. } = &e.node else {
        panic!()
    };
    assert!(matches!(els.node, ExprKind::Cond { .. }));
    let e = parse_expr(0, "a = b += c").unwrap();
    let ExprKind::Assign { op: None, rhs, .. } = &e.node else {
        panic!()
    };
    assert!(matches!(
        rhs.node,
        ExprKind::Assign {
            op: Some(BinOp::Add),
            ..
        }
    ));
    let d = parse_expr(0, "1 +").unwrap_err();
    assert_eq!(d.message, "unexpected end of input; expected an expression");
    let e = parse_expr(0, "stringof arg0").unwrap();
    assert!(matches!(e.node, ExprKind::Stringof(_)));
}

#[test]
fn aggregations() {
    let c = clause("BEGIN { @[pid, tid] = count(); @ = sum(1); @x = max(arg0) }");
    let names: Vec<(String, usize, String)> = c
        .body
        .iter()
        .map(|s| match s {
            Stmt::Expr(e) => match &e.node {
                ExprKind::Aggregate {
                    name, keys, func, ..
                } => (name.node.clone(), keys.len(), func.node.clone()),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            ("".into(), 2, "count".into()),
            ("".into(), 0, "sum".into()),
            ("x".into(), 0, "max".into())
        ]
    );
}

#[test]
fn pragmas_and_shebang() {
    let s = ok(
        "#!/usr/sbin/dtrace -qs\n#pragma D option bufsize=4m\n  #pragma D option quiet\nBEGIN {}",
    );
    let Item::Pragma { words, .. } = &s.items[0] else {
        panic!()
    };
    assert_eq!(words, &["D", "option", "bufsize=4m"]);
    assert!(matches!(&s.items[1], Item::Pragma { words, .. } if words[2] == "quiet"));
    assert_eq!(s.items.len(), 3);
    let s = ok("#pragma D option flowindent // indent\n#pragma D option x=1 /* a\n b */ BEGIN {}");
    let Item::Pragma { words, span } = &s.items[0] else {
        panic!()
    };
    assert_eq!(words, &["D", "option", "flowindent"]);
    assert_eq!((span.start, span.end), (0, 27));
    assert!(matches!(&s.items[1], Item::Pragma { words, .. } if words[2] == "x=1"));
    assert!(matches!(&s.items[2], Item::Clause(_)));
}

// ---------------------------------------------------------------- syntax errors, rendered

#[test]
fn error_unexpected_close_brace() {
    assert_eq!(
        err("BEGIN\n{\n    x = 1 + };\n}\n"),
        r#"error: unexpected `}`; expected an expression
  --> script.d:3:13
  |
3 |     x = 1 + };
  |             ^ expected an expression

"#
    );
}

#[test]
fn error_missing_close_brace() {
    assert_eq!(
        err("BEGIN\n{\n    x = 1;\n    y = 2;\n"),
        r#"error: unexpected end of input: missing `}` closing the clause that starts here
  --> script.d:2:1
  |
2 | {
  | ^ this `{` is never closed

"#
    );
}

#[test]
fn error_missing_close_brace_of_if() {
    assert_eq!(
        err("BEGIN {\n    if (x) {\n        y = 1;\n}\n"),
        r#"error: unexpected end of input: missing `}` closing the clause that starts here
  --> script.d:1:7
  |
1 | BEGIN {
  |       ^ this `{` is never closed

"#
    );
}

#[test]
fn error_missing_close_brace_of_block() {
    assert_eq!(
        err("BEGIN {\n    if (x) {\n        y = 1;\n"),
        r#"error: unexpected end of input: missing `}` closing the block that starts here
  --> script.d:2:12
  |
2 |     if (x) {
  |            ^ this `{` is never closed

"#
    );
}

#[test]
fn error_unterminated_string() {
    assert_eq!(
        err("BEGIN { printf(\"abc); }\n"),
        r#"error: unterminated string literal
  --> script.d:1:16
  |
1 | BEGIN { printf("abc); }
  |                ^ this string is never closed with `"`

"#
    );
}

#[test]
fn error_bad_hash() {
    assert_eq!(
        err("BEGIN { x = 1 # 2; }\n"),
        r#"error: unexpected character `#`
  --> script.d:1:15
  |
1 | BEGIN { x = 1 # 2; }
  |               ^ not valid in D

"#
    );
}

#[test]
fn error_preprocessor() {
    assert_eq!(
        err("#include <stdio.h>\nBEGIN {}\n"),
        r#"error: tracer does not run the C preprocessor (-C)
  --> script.d:1:1
  |
1 | #include <stdio.h>
  | ^^^^^^^^ preprocessor directive
  |
  = only `#pragma D option ...` lines are understood; use `inline` declarations instead of `#define`

"#
    );
}

#[test]
fn error_missing_expression() {
    assert_eq!(
        err("BEGIN { x = ; }\n"),
        r#"error: unexpected `;`; expected an expression
  --> script.d:1:13
  |
1 | BEGIN { x = ; }
  |             ^ expected an expression

"#
    );
}

#[test]
fn error_unbalanced_parens() {
    assert_eq!(
        err("BEGIN { x = (1 + 2; }\n"),
        r#"error: unexpected `;`; expected `)`
  --> script.d:1:19
  |
1 | BEGIN { x = (1 + 2; }
  |                   ^ expected `)`

"#
    );
}

#[test]
fn error_aggregation_without_function() {
    assert_eq!(
        err("BEGIN { @a = 5; }\n"),
        r#"error: aggregations must be assigned an aggregating function such as count()
  --> script.d:1:14
  |
1 | BEGIN { @a = 5; }
  |              ^ not an aggregating function call
  |
  = for example `@counts[execname] = count();` or `@bytes = sum(arg2);`

"#
    );
}

#[test]
fn error_aggregation_compound_assign() {
    assert_eq!(
        err("BEGIN { @a[1] += count(); }\n"),
        r#"error: aggregations must be assigned an aggregating function such as count()
  --> script.d:1:15
  |
1 | BEGIN { @a[1] += count(); }
  |               ^^ `+=` cannot be used on an aggregation
  |
  = for example `@counts[execname] = count();` or `@bytes = sum(arg2);`

"#
    );
}

#[test]
fn error_predicate_never_closed() {
    assert_eq!(
        err("syscall::read:entry\n/pid == 1\n"),
        r#"error: unexpected end of input: the predicate is never closed
  --> script.d:2:1
  |
2 | /pid == 1
  | ^ predicate starts here
  |
  = a predicate is written `/ expression /` before the clause body

"#
    );
}

#[test]
fn error_predicate_not_closed_before_body() {
    assert_eq!(
        err("syscall::read:entry /pid == 1 { x = 1; }\n"),
        r#"error: missing `/` closing the predicate before `{`
  --> script.d:1:31
  |
1 | syscall::read:entry /pid == 1 { x = 1; }
  |                               ^ expected `/` before this
  |
  = the predicate starts with the `/` at line 1, column 21

"#
    );
}

#[test]
fn error_predicate_unclosed_paren() {
    assert_eq!(
        err("BEGIN /(pid == 1/ { }\n"),
        r#"error: missing `)` before the `/` that closes the predicate
  --> script.d:1:17
  |
1 | BEGIN /(pid == 1/ { }
  |                 ^ expected `)` before this
  |
  = the `(` at line 1, column 8 is never closed

"#
    );
}

#[test]
fn error_missing_semicolon() {
    assert_eq!(
        err("BEGIN {\n    x = 1\n    y = 2;\n}\n"),
        r#"error: missing `;` between statements
  --> script.d:2:10
  |
2 |     x = 1
  |          ^ expected `;` before `y`

"#
    );
}

#[test]
fn error_number_with_unit() {
    assert_eq!(
        err("tick-1s { x = 10ms; }\n"),
        r#"error: invalid integer constant `10ms`
  --> script.d:1:15
  |
1 | tick-1s { x = 10ms; }
  |               ^^^^ not a valid number
  |
  = a number directly followed by letters (like `10ms`) is only valid in a probe description such as `tick-10ms`

"#
    );
}

#[test]
fn error_declaration_without_semicolon() {
    assert_eq!(
        err("int x"),
        r#"error: unexpected end of input; expected `;`
  --> script.d:1:6
  |
1 | int x
  |      ^ expected `;`

"#
    );
}

#[test]
fn error_stray_close_brace() {
    assert_eq!(
        err("BEGIN { x = 1; } }\n"),
        r#"error: unexpected `}`; expected a probe description or a declaration
  --> script.d:1:18
  |
1 | BEGIN { x = 1; } }
  |                  ^ expected a probe description or a declaration

"#
    );
}

#[test]
fn error_unterminated_comment() {
    assert_eq!(
        err("BEGIN { /* comment\n x = 1; }\n"),
        r#"error: unterminated comment
  --> script.d:1:9
  |
1 | BEGIN { /* comment
  |         ^^ this comment is never closed with `*/`

"#
    );
}

#[test]
fn error_probe_after_comma() {
    assert_eq!(
        err("BEGIN, { }\n"),
        r#"error: unexpected `{`; expected a probe description
  --> script.d:1:8
  |
1 | BEGIN, { }
  |        ^ expected a probe description

"#
    );
}

#[test]
fn error_unicode_column() {
    assert_eq!(
        err("BEGIN { s = \"é\"; x = é; }\n"),
        r#"error: unexpected character `é`
  --> script.d:1:22
  |
1 | BEGIN { s = "é"; x = é; }
  |                      ^ not valid in D

"#
    );
}

#[test]
fn pathological_nesting_is_an_error_not_a_crash() {
    let long_sum = format!("BEGIN {{ x = {}1; }}", "1 + ".repeat(100_000));
    assert_eq!(
        parse(0, &long_sum).unwrap_err().message,
        "this statement is too long"
    );
    let negations = format!("BEGIN {{ x = {}1; }}", "-".repeat(100_000));
    assert_eq!(
        parse(0, &negations).unwrap_err().message,
        "this statement is too long"
    );
    let blocks = format!("BEGIN {{ {} }}", "if (x) { ".repeat(100_000));
    assert_eq!(
        parse(0, &blocks).unwrap_err().message,
        "blocks are nested too deeply"
    );
    let chain = format!(
        "BEGIN {{ if (a) x = 1; {} }}",
        "else if (a) x = 1; ".repeat(100_000)
    );
    assert_eq!(
        parse(0, &chain).unwrap_err().message,
        "too many `else` branches in one clause"
    );
    // Long but flat scripts are fine.
    let many = format!("BEGIN {{ {} }}", "x = x + 1; ".repeat(20_000));
    assert!(parse(0, &many).is_ok());
}
