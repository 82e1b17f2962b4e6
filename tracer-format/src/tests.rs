//! Tests of the parser against DTrace's printf test expectations.

use crate::parse::{parse, Piece};
use crate::Format;

#[test]
fn parse_errors_match_dtrace() {
    let e = |f: &str| parse(f).unwrap_err().0;
    assert_eq!(
        e("%"),
        "format conversion #1 name expected before end of format string"
    );
    assert_eq!(e("%d %z"), "format conversion #2 is undefined: %z");
    assert_eq!(e("%lf"), "format conversion #1 is undefined: %lf");
    assert_eq!(
        e("%1$d"),
        "format conversion #1 uses unsupported positional format (%n$)"
    );
    assert_eq!(
        e("%-%"),
        "format conversion #1 cannot be combined with other format flags: %%"
    );
    assert_eq!(
        e("%1.2.3d"),
        "format conversion #1 has more than one '.' specified"
    );
    assert_eq!(
        e("%**d"),
        "format conversion #1 has more than one '*' specified for the output precision"
    );
}

#[test]
fn parse_pieces() {
    assert_eq!(parse("").unwrap(), vec![Piece::Text(String::new())]);
    let p = parse("a%-05d%%b").unwrap();
    assert_eq!(p.len(), 4);
    let Piece::Conv(c) = &p[1] else { panic!() };
    assert!(c.zpad && !c.left && c.width == 5 && c.number == 1);
    let Piece::Conv(c) = &p[2] else { panic!() };
    assert_eq!((c.info.name, c.number), ("%", 2));
    let p = parse("%*.*d %@u %hhx").unwrap();
    let convs: Vec<_> = p
        .iter()
        .filter_map(|p| match p {
            Piece::Conv(c) => Some(c),
            Piece::Text(_) => None,
        })
        .collect();
    assert!(convs[0].dyn_width && convs[0].dyn_prec && convs[0].info.name == "d");
    assert!(convs[1].agg && convs[1].info.name == "u");
    assert_eq!(convs[2].info.name, "hhx");
}

#[test]
fn format_keeps_source_and_round_trips() {
    let f = Format::parse("%s=%d\n").unwrap();
    assert_eq!(f.as_str(), "%s=%d\n");
    assert_eq!(f.pieces().len(), 4);
    assert_eq!(format!("{f:?}"), "\"%s=%d\\n\"");
    let back = Format::try_from(String::from(f.clone())).unwrap();
    assert_eq!(back, f);
    assert!(Format::try_from(String::from("%z")).is_err());
}
