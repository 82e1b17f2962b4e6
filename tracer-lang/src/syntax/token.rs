//! Tokens produced by the [`lexer`](super::lexer) and the tables of D keywords and built-in type
//! names.

/// One D token. Data-carrying tokens hold decoded values; the span is kept by the lexer.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A probe description such as `syscall::open*:entry`, lexed as a whole (top level only).
    Probe(String),
    Ident(String),
    /// A type name: built-in C type words merged (`unsigned long long`), `string`, a built-in
    /// typedef (`uint64_t`) or a typedef declared earlier in the script.
    TypeName(String),
    /// Integer constant: value and normalised lower-case suffix (`""`, `u`, `l`, `ul`, `ll`,
    /// `ull`).
    Int((u64, String)),
    Str(String),
    Char(u8),
    /// `$1`, `$target`: the part after `$`.
    Macro(String),
    /// `$$1`: the part after `$$`.
    MacroStr(String),
    /// `@name` or `@`: the part after `@`.
    AggRef(String),
    /// `#pragma ...`: the words after `pragma`.
    Pragma(Vec<String>),
    /// The `/` opening a predicate.
    PredOpen,
    /// The `/` closing a predicate.
    PredClose,

    // Keywords.
    SelfKw,
    This,
    Inline,
    Sizeof,
    Stringof,
    Offsetof,
    Typedef,
    Struct,
    Union,
    Enum,
    If,
    Else,
    Static,
    Extern,

    // Punctuation and operators.
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Colon,
    Question,
    Dot,
    Arrow,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    PlusPlus,
    MinusMinus,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    Amp,
    Pipe,
    Caret,
    AmpAmp,
    PipePipe,
    CaretCaret,
    Bang,
    Tilde,
    Assign,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    AmpEq,
    PipeEq,
    CaretEq,
    ShlEq,
    ShrEq,
}

/// Operators and punctuation, longest first so that the lexer can take the first match.
pub const PUNCT: &[(&str, Tok)] = &[
    ("<<=", Tok::ShlEq),
    (">>=", Tok::ShrEq),
    ("->", Tok::Arrow),
    ("++", Tok::PlusPlus),
    ("--", Tok::MinusMinus),
    ("<<", Tok::Shl),
    (">>", Tok::Shr),
    ("<=", Tok::Le),
    (">=", Tok::Ge),
    ("==", Tok::EqEq),
    ("!=", Tok::Ne),
    ("&&", Tok::AmpAmp),
    ("||", Tok::PipePipe),
    ("^^", Tok::CaretCaret),
    ("+=", Tok::PlusEq),
    ("-=", Tok::MinusEq),
    ("*=", Tok::StarEq),
    ("/=", Tok::SlashEq),
    ("%=", Tok::PercentEq),
    ("&=", Tok::AmpEq),
    ("|=", Tok::PipeEq),
    ("^=", Tok::CaretEq),
    ("(", Tok::LParen),
    (")", Tok::RParen),
    ("[", Tok::LBracket),
    ("]", Tok::RBracket),
    ("{", Tok::LBrace),
    ("}", Tok::RBrace),
    (",", Tok::Comma),
    (";", Tok::Semi),
    (":", Tok::Colon),
    ("?", Tok::Question),
    (".", Tok::Dot),
    ("+", Tok::Plus),
    ("-", Tok::Minus),
    ("*", Tok::Star),
    ("/", Tok::Slash),
    ("%", Tok::Percent),
    ("<", Tok::Lt),
    (">", Tok::Gt),
    ("&", Tok::Amp),
    ("|", Tok::Pipe),
    ("^", Tok::Caret),
    ("!", Tok::Bang),
    ("~", Tok::Tilde),
    ("=", Tok::Assign),
];

/// D keywords other than type names.
pub fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "self" => Tok::SelfKw,
        "this" => Tok::This,
        "inline" => Tok::Inline,
        "sizeof" => Tok::Sizeof,
        "stringof" => Tok::Stringof,
        "offsetof" => Tok::Offsetof,
        "typedef" => Tok::Typedef,
        "struct" => Tok::Struct,
        "union" => Tok::Union,
        "enum" => Tok::Enum,
        "if" => Tok::If,
        "else" => Tok::Else,
        "static" => Tok::Static,
        "extern" => Tok::Extern,
        _ => return None,
    })
}

/// Type qualifiers, accepted and dropped.
pub fn is_qualifier(word: &str) -> bool {
    matches!(word, "const" | "volatile" | "restrict")
}

/// C type keywords that combine into one type name (`unsigned long long int`).
pub fn is_c_type_word(word: &str) -> bool {
    matches!(
        word,
        "void" | "char" | "short" | "int" | "long" | "float" | "double" | "signed" | "unsigned"
    )
}

/// Type names D knows without a declaration: `string` and the usual C typedefs.
pub fn is_builtin_type_name(word: &str) -> bool {
    matches!(
        word,
        "string"
            | "int8_t"
            | "int16_t"
            | "int32_t"
            | "int64_t"
            | "uint8_t"
            | "uint16_t"
            | "uint32_t"
            | "uint64_t"
            | "intptr_t"
            | "uintptr_t"
            | "size_t"
            | "ssize_t"
            | "off_t"
            | "pid_t"
            | "uid_t"
            | "gid_t"
            | "id_t"
            | "dev_t"
            | "ino_t"
            | "mode_t"
            | "time_t"
            | "clock_t"
            | "caddr_t"
            | "hrtime_t"
            | "uchar_t"
            | "ushort_t"
            | "uint_t"
            | "ulong_t"
            | "u_char"
            | "u_short"
            | "u_int"
            | "u_long"
            | "_Bool"
    )
}

/// Words that start a top-level declaration rather than a probe description.
pub fn starts_declaration(word: &str) -> bool {
    matches!(
        word,
        "self" | "this" | "inline" | "typedef" | "struct" | "union" | "enum" | "static" | "extern"
    ) || is_qualifier(word)
        || is_c_type_word(word)
        || is_builtin_type_name(word)
}

/// Characters allowed in a probe description (`/` is handled separately).
pub fn is_probe_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'_' | b'.'
                | b'$'
                | b'*'
                | b'?'
                | b'+'
                | b'-'
                | b'['
                | b']'
                | b'!'
                | b':'
                | b'~'
                | b'@'
                | b'\\'
        )
}

/// Characters that may start a probe description.
pub fn is_probe_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'.' | b'$' | b'*' | b'?' | b'[' | b':' | b'\\')
}

pub fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

pub fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
