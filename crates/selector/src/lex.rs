//! The selector lexer: text to tokens, each with the column it starts at (for error messages).

use crate::SelectorError;

/// A token of the selector language. Keywords are recognised case-insensitively.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    True,
    False,
    Null,
    And,
    Or,
    Not,
    Like,
    Escape,
    In,
    Between,
    Is,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
    Comma,
    End,
}

/// Splits `text` into tokens with their 1-based columns; the last token is `End`.
pub(crate) fn lex(text: &str) -> Result<Vec<(Token, usize)>, SelectorError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let column = i + 1;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = bytes.get(i..i + 2);
        let (token, len) = match b {
            b'=' => (Token::Eq, 1),
            b'<' if two == Some(b"<>") => (Token::Ne, 2),
            b'<' if two == Some(b"<=") => (Token::Le, 2),
            b'>' if two == Some(b">=") => (Token::Ge, 2),
            b'<' => (Token::Lt, 1),
            b'>' => (Token::Gt, 1),
            b'+' => (Token::Plus, 1),
            b'-' => (Token::Minus, 1),
            b'*' => (Token::Star, 1),
            b'/' => (Token::Slash, 1),
            b'(' => (Token::LParen, 1),
            b')' => (Token::RParen, 1),
            b',' => (Token::Comma, 1),
            b'\'' => string(text, i)?,
            b'0'..=b'9' | b'.' => number(text, i)?,
            _ if is_ident_start(b) => {
                let len = bytes
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&c| is_ident_part(c))
                    .count();
                let word = text.get(i..i + len).unwrap_or_default();
                (
                    keyword(word).unwrap_or_else(|| Token::Ident(word.to_owned())),
                    len,
                )
            }
            _ => {
                let found = text.get(i..).and_then(|t| t.chars().next()).unwrap_or('?');
                return Err(SelectorError::syntax(
                    column,
                    format!("unexpected '{found}'"),
                ));
            }
        };
        tokens.push((token, column));
        i += len;
    }
    tokens.push((Token::End, text.len() + 1));
    Ok(tokens)
}

/// Identifiers are Java identifiers; non-ASCII letters are accepted as identifier bytes.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_ident_part(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

fn keyword(word: &str) -> Option<Token> {
    const KEYWORDS: [(&str, Token); 11] = [
        ("TRUE", Token::True),
        ("FALSE", Token::False),
        ("NULL", Token::Null),
        ("AND", Token::And),
        ("OR", Token::Or),
        ("NOT", Token::Not),
        ("LIKE", Token::Like),
        ("ESCAPE", Token::Escape),
        ("IN", Token::In),
        ("BETWEEN", Token::Between),
        ("IS", Token::Is),
    ];
    KEYWORDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(word))
        .map(|(_, t)| t.clone())
}

/// A string literal starting at the quote at `start`; `''` stands for one quote.
fn string(text: &str, start: usize) -> Result<(Token, usize), SelectorError> {
    let mut value = String::new();
    let mut chars = text
        .get(start + 1..)
        .unwrap_or_default()
        .char_indices()
        .peekable();
    while let Some((offset, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().map(|&(_, c)| c) == Some('\'') {
                chars.next();
                value.push('\'');
            } else {
                return Ok((Token::Str(value), offset + 2));
            }
        } else {
            value.push(c);
        }
    }
    Err(SelectorError::syntax(
        start + 1,
        "unterminated string literal".into(),
    ))
}

/// A numeric literal: decimal, hex `0x..`, octal `0..`, an `L` suffix, or a float with an
/// optional exponent and `F`/`D` suffix.
fn number(text: &str, start: usize) -> Result<(Token, usize), SelectorError> {
    let rest = text.get(start..).unwrap_or_default();
    let bytes = rest.as_bytes();
    let bad = |what: &str| SelectorError::syntax(start + 1, format!("invalid number: {what}"));
    if bytes.len() > 1 && bytes.first() == Some(&b'0') && matches!(bytes.get(1), Some(b'x' | b'X'))
    {
        let digits = bytes
            .get(2..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        let hex = rest.get(2..2 + digits).unwrap_or_default();
        let value = u64::from_str_radix(hex, 16).map_err(|_| bad(hex))?;
        let mut len = 2 + digits;
        if matches!(bytes.get(len), Some(b'l' | b'L')) {
            len += 1;
        }
        return Ok((Token::Int(value as i64), len));
    }
    let mut len = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut float = false;
    if bytes.get(len) == Some(&b'.') {
        float = true;
        len += 1;
        len += bytes
            .get(len..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
    }
    if matches!(bytes.get(len), Some(b'e' | b'E')) {
        let mut at = len + 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let digits = bytes
            .get(at..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > 0 {
            float = true;
            len = at + digits;
        }
    }
    let literal = rest.get(..len).unwrap_or_default();
    if literal == "." {
        return Err(bad("."));
    }
    let suffix = bytes.get(len).copied();
    if float || matches!(suffix, Some(b'f' | b'F' | b'd' | b'D')) {
        let value: f64 = literal.parse().map_err(|_| bad(literal))?;
        let len = len + usize::from(matches!(suffix, Some(b'f' | b'F' | b'd' | b'D')));
        return Ok((Token::Float(value), len));
    }
    let value = if literal.len() > 1 && literal.starts_with('0') {
        i64::from_str_radix(literal.get(1..).unwrap_or_default(), 8).map_err(|_| bad(literal))?
    } else {
        literal.parse().map_err(|_| bad(literal))?
    };
    Ok((
        Token::Int(value),
        len + usize::from(matches!(suffix, Some(b'l' | b'L'))),
    ))
}
