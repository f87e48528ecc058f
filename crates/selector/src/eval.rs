//! Evaluation: an expression tree against one message's fields, with SQL three-valued logic.
//!
//! Nothing here allocates. Values are borrowed from the message or the selector; `Val::Null`
//! stands for both a SQL `NULL` and the unknown result of a comparison. Recursion is bounded by
//! the tree depth the parser allows ([`crate::SELECTOR_DEPTH_MAX`]).

use sluice_codec::messaging::FieldRef;

use crate::ident::{Fields, HeaderField, Ident};
use crate::parse::{Arith, Cmp, Expr, Literal};

/// A value during evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl<'a> Val<'a> {
    fn from_field(field: Option<FieldRef<'a>>) -> Self {
        match field {
            Some(FieldRef::Bool(b)) => Val::Bool(b),
            Some(FieldRef::Int(v) | FieldRef::Timestamp(v)) => Val::Int(v),
            Some(FieldRef::Float(v)) => Val::Float(v),
            Some(FieldRef::Str(s) | FieldRef::Symbol(s)) => Val::Str(s),
            // A user-id is binary on the wire; JMS clients put UTF-8 text in it.
            Some(FieldRef::Binary(b)) => std::str::from_utf8(b).map_or(Val::Null, Val::Str),
            _ => Val::Null,
        }
    }

    /// The truth value: `None` is unknown; a non-boolean is unknown too.
    fn truth(self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }
}

fn known(b: Option<bool>) -> Val<'static> {
    b.map_or(Val::Null, Val::Bool)
}

/// A compiled LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Like {
    parts: Vec<LikePart>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LikePart {
    Char(char),
    /// `_`: exactly one character.
    One,
    /// `%`: any run of characters.
    Any,
}

impl Like {
    /// Compiles `pattern`; a character after `escape` stands for itself.
    pub(crate) fn compile(pattern: &str, escape: Option<char>) -> Self {
        let mut parts = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let part = match c {
                _ if Some(c) == escape => match chars.next() {
                    Some(next) => LikePart::Char(next),
                    // A trailing escape character stands for itself.
                    None => LikePart::Char(c),
                },
                '%' => LikePart::Any,
                '_' => LikePart::One,
                _ => LikePart::Char(c),
            };
            parts.push(part);
        }
        Like { parts }
    }

    /// Whether `text` matches, by the greedy-star algorithm with one backtrack point: linear in
    /// `text` times the pattern, and no allocation.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            let c = text.get(t..).and_then(|rest| rest.chars().next());
            let part = self.parts.get(p).copied();
            match (part, c) {
                (Some(LikePart::Any), _) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                (Some(LikePart::One), Some(c)) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (Some(LikePart::Char(want)), Some(c)) if want == c => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last `%` take one more character, if there is one.
            let Some((star_p, star_t)) = star else {
                return false;
            };
            let Some(skipped) = text.get(star_t..).and_then(|rest| rest.chars().next()) else {
                return false;
            };
            let next_t = star_t + skipped.len_utf8();
            star = Some((star_p, next_t));
            p = star_p + 1;
            t = next_t;
        }
    }
}

/// Evaluates `expr` against `fields`.
pub(crate) fn eval<'a, F: Fields + ?Sized>(expr: &'a Expr, fields: &'a F) -> Val<'a> {
    match expr {
        Expr::Literal(Literal::Bool(b)) => Val::Bool(*b),
        Expr::Literal(Literal::Int(v)) => Val::Int(*v),
        Expr::Literal(Literal::Float(v)) => Val::Float(*v),
        Expr::Literal(Literal::Str(s)) => Val::Str(s),
        Expr::Null => Val::Null,
        Expr::Ident(ident) => read(ident, fields),
        Expr::Neg(inner) => match eval(inner, fields) {
            Val::Int(v) => v.checked_neg().map_or(Val::Null, Val::Int),
            Val::Float(v) => Val::Float(-v),
            _ => Val::Null,
        },
        Expr::Arith(op, l, r) => arith(*op, eval(l, fields), eval(r, fields)),
        Expr::Cmp(op, l, r) => known(compare(*op, eval(l, fields), eval(r, fields))),
        Expr::And(terms) => {
            // FALSE wins over unknown, which wins over TRUE.
            let mut result = Some(true);
            for term in terms {
                match eval(term, fields).truth() {
                    Some(false) => return Val::Bool(false),
                    None => result = None,
                    Some(true) => {}
                }
            }
            known(result)
        }
        Expr::Or(terms) => {
            let mut result = Some(false);
            for term in terms {
                match eval(term, fields).truth() {
                    Some(true) => return Val::Bool(true),
                    None => result = None,
                    Some(false) => {}
                }
            }
            known(result)
        }
        Expr::Not(inner) => known(eval(inner, fields).truth().map(|b| !b)),
        Expr::Like {
            value,
            pattern,
            negated,
        } => match eval(value, fields) {
            Val::Str(s) => Val::Bool(pattern.matches(s) != *negated),
            _ => Val::Null,
        },
        Expr::In {
            value,
            items,
            negated,
        } => match eval(value, fields) {
            Val::Str(s) => Val::Bool(items.iter().any(|item| item == s) != *negated),
            _ => Val::Null,
        },
        Expr::Between {
            value,
            low,
            high,
            negated,
        } => {
            let v = eval(value, fields);
            let above = compare(Cmp::Ge, v, eval(low, fields));
            let below = compare(Cmp::Le, v, eval(high, fields));
            let inside = match (above, below) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            known(inside.map(|b| b != *negated))
        }
        Expr::IsNull { value, negated } => {
            Val::Bool(matches!(eval(value, fields), Val::Null) != *negated)
        }
    }
}

fn read<'a, F: Fields + ?Sized>(ident: &'a Ident, fields: &'a F) -> Val<'a> {
    match ident {
        Ident::Header(HeaderField::Priority) => Val::Int(i64::from(fields.priority())),
        Ident::Header(HeaderField::DeliveryMode) => Val::Str(if fields.durable() {
            "PERSISTENT"
        } else {
            "NON_PERSISTENT"
        }),
        Ident::Header(HeaderField::DeliveryCount) => {
            Val::Int(i64::from(fields.delivery_count()) + 1)
        }
        Ident::Property(which) => Val::from_field(fields.property(*which)),
        Ident::Application(name) => Val::from_field(fields.application_property(name)),
    }
}

fn arith<'a>(op: Arith, l: Val<'a>, r: Val<'a>) -> Val<'a> {
    match (l, r) {
        (Val::Int(a), Val::Int(b)) => {
            let v = match op {
                Arith::Add => a.checked_add(b),
                Arith::Sub => a.checked_sub(b),
                Arith::Mul => a.checked_mul(b),
                Arith::Div => a.checked_div(b),
            };
            // Overflow and division by zero are unknown, not a wrapped or infinite number.
            v.map_or(Val::Null, Val::Int)
        }
        _ => match (as_float(l), as_float(r)) {
            (Some(a), Some(b)) => Val::Float(match op {
                Arith::Add => a + b,
                Arith::Sub => a - b,
                Arith::Mul => a * b,
                Arith::Div => a / b,
            }),
            _ => Val::Null,
        },
    }
}

fn as_float(v: Val<'_>) -> Option<f64> {
    match v {
        Val::Int(i) => Some(i as f64),
        Val::Float(f) => Some(f),
        _ => None,
    }
}

/// Compares two values: numbers with numbers (an integer promoted to a float when the other
/// side is one), strings and booleans with their own kind by `=` and `<>` only (JMS 2.0
/// §3.8.1.2). Anything else, and any `NULL`, is unknown.
fn compare(op: Cmp, l: Val<'_>, r: Val<'_>) -> Option<bool> {
    let ordering = match (l, r) {
        (Val::Int(a), Val::Int(b)) => a.partial_cmp(&b),
        (Val::Str(a), Val::Str(b)) => return equality(op, a == b),
        (Val::Bool(a), Val::Bool(b)) => return equality(op, a == b),
        _ => as_float(l)?.partial_cmp(&as_float(r)?),
    };
    let Some(ordering) = ordering else {
        // NaN compares unequal to everything.
        return Some(op == Cmp::Ne);
    };
    Some(match op {
        Cmp::Eq => ordering.is_eq(),
        Cmp::Ne => ordering.is_ne(),
        Cmp::Lt => ordering.is_lt(),
        Cmp::Gt => ordering.is_gt(),
        Cmp::Le => ordering.is_le(),
        Cmp::Ge => ordering.is_ge(),
    })
}

fn equality(op: Cmp, equal: bool) -> Option<bool> {
    match op {
        Cmp::Eq => Some(equal),
        Cmp::Ne => Some(!equal),
        _ => None,
    }
}
