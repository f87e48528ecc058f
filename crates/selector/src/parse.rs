//! The selector parser: tokens to an expression tree, with the depth and size limits a hostile
//! client's selector must stay within.
//!
//! Grammar (lowest precedence first), as JMS 2.0 §3.8.1.1 and Artemis's `SelectorParser.jj`:
//! `OR`, `AND`, `NOT`, comparison (`= <> < > <= >=`, `[NOT] LIKE`, `[NOT] IN`,
//! `[NOT] BETWEEN`, `IS [NOT] NULL`), `+ -`, `* /`, unary `+ -`, primary.

use crate::SelectorError;
use crate::eval::Like;
use crate::ident::Ident;
use crate::lex::{Token, lex};

/// Bytes of selector text accepted.
pub const SELECTOR_BYTES_MAX: usize = 4096;
/// Depth of the expression tree accepted (parentheses, `NOT`, operators): evaluation recurses
/// at most this deep.
pub const SELECTOR_DEPTH_MAX: usize = 64;
/// Items of one `IN` list accepted.
pub const SELECTOR_IN_ITEMS_MAX: usize = 256;

/// A literal value of the selector text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// An expression. `And` and `Or` are n-ary so that a long chain does not make a deep tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(Literal),
    Null,
    Ident(Ident),
    Neg(Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Like {
        value: Box<Expr>,
        pattern: Like,
        negated: bool,
    },
    In {
        value: Box<Expr>,
        items: Vec<String>,
        negated: bool,
    },
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    IsNull {
        value: Box<Expr>,
        negated: bool,
    },
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    depth: usize,
}

/// Parses selector text into an expression tree.
pub(crate) fn parse(text: &str) -> Result<Expr, SelectorError> {
    if text.len() > SELECTOR_BYTES_MAX {
        return Err(SelectorError::TooLong { bytes: text.len() });
    }
    let mut parser = Parser {
        tokens: lex(text)?,
        at: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        Token::End => Ok(expr),
        _ => Err(parser.error("expected an operator or the end of the selector")),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.at).map_or(&Token::End, |(t, _)| t)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(0, |&(_, c)| c)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek() == token;
        if found {
            self.at += 1;
        }
        found
    }

    fn error(&self, what: &str) -> SelectorError {
        SelectorError::syntax(self.column(), what.to_owned())
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), SelectorError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Counts one level of nesting for the duration of `f`.
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, SelectorError>,
    ) -> Result<T, SelectorError> {
        if self.depth >= SELECTOR_DEPTH_MAX {
            return Err(SelectorError::TooDeep {
                column: self.column(),
            });
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, SelectorError> {
        self.nested(|p| {
            let mut terms = vec![p.and()?];
            while p.eat(&Token::Or) {
                terms.push(p.and()?);
            }
            Ok(if terms.len() == 1 {
                terms.swap_remove(0)
            } else {
                Expr::Or(terms)
            })
        })
    }

    fn and(&mut self) -> Result<Expr, SelectorError> {
        let mut terms = vec![self.not()?];
        while self.eat(&Token::And) {
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn not(&mut self) -> Result<Expr, SelectorError> {
        if self.eat(&Token::Not) {
            self.nested(|p| Ok(Expr::Not(Box::new(p.not()?))))
        } else {
            self.comparison()
        }
    }

    fn comparison(&mut self) -> Result<Expr, SelectorError> {
        let left = self.additive()?;
        let cmp = match self.peek() {
            Token::Eq => Some(Cmp::Eq),
            Token::Ne => Some(Cmp::Ne),
            Token::Lt => Some(Cmp::Lt),
            Token::Gt => Some(Cmp::Gt),
            Token::Le => Some(Cmp::Le),
            Token::Ge => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(cmp) = cmp {
            self.at += 1;
            let right = self.nested(Self::additive)?;
            return Ok(Expr::Cmp(cmp, Box::new(left), Box::new(right)));
        }
        let value = Box::new(left);
        if self.eat(&Token::Is) {
            let negated = self.eat(&Token::Not);
            self.expect(&Token::Null, "expected NULL")?;
            return Ok(Expr::IsNull { value, negated });
        }
        let negated = self.eat(&Token::Not);
        match self.next() {
            Token::Like => self.like(value, negated),
            Token::In => self.in_list(value, negated),
            Token::Between => {
                let low = Box::new(self.nested(Self::additive)?);
                self.expect(&Token::And, "expected AND")?;
                let high = Box::new(self.nested(Self::additive)?);
                Ok(Expr::Between {
                    value,
                    low,
                    high,
                    negated,
                })
            }
            _ if negated => {
                self.at -= 1;
                Err(self.error("expected LIKE, IN or BETWEEN"))
            }
            _ => {
                self.at -= 1;
                Ok(*value)
            }
        }
    }

    fn like(&mut self, value: Box<Expr>, negated: bool) -> Result<Expr, SelectorError> {
        let Token::Str(pattern) = self.next() else {
            self.at -= 1;
            return Err(self.error("expected a string pattern after LIKE"));
        };
        let mut escape = None;
        if self.eat(&Token::Escape) {
            let column = self.column();
            let Token::Str(e) = self.next() else {
                return Err(SelectorError::syntax(
                    column,
                    "expected a string after ESCAPE".into(),
                ));
            };
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => escape = Some(c),
                _ => {
                    return Err(SelectorError::syntax(
                        column,
                        "ESCAPE takes a string of one character".into(),
                    ));
                }
            }
        }
        let pattern = Like::compile(&pattern, escape);
        Ok(Expr::Like {
            value,
            pattern,
            negated,
        })
    }

    fn in_list(&mut self, value: Box<Expr>, negated: bool) -> Result<Expr, SelectorError> {
        self.expect(&Token::LParen, "expected '(' after IN")?;
        let mut items = Vec::new();
        loop {
            let Token::Str(item) = self.next() else {
                self.at -= 1;
                return Err(self.error("expected a string literal in the IN list"));
            };
            if items.len() >= SELECTOR_IN_ITEMS_MAX {
                return Err(SelectorError::TooManyItems {
                    column: self.column(),
                });
            }
            items.push(item);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen, "expected ')'")?;
        Ok(Expr::In {
            value,
            items,
            negated,
        })
    }

    fn additive(&mut self) -> Result<Expr, SelectorError> {
        let mut left = self.multiplicative()?;
        let mut chain = 0;
        loop {
            let op = match self.peek() {
                Token::Plus => Arith::Add,
                Token::Minus => Arith::Sub,
                _ => return Ok(left),
            };
            self.at += 1;
            chain = self.chain_link(chain)?;
            let right = self.nested(Self::multiplicative)?;
            left = Expr::Arith(op, Box::new(left), Box::new(right));
        }
    }

    /// Each operator of a left-associative chain is one level deeper in the tree.
    fn chain_link(&self, chain: usize) -> Result<usize, SelectorError> {
        if self.depth + chain + 1 >= SELECTOR_DEPTH_MAX {
            return Err(SelectorError::TooDeep {
                column: self.column(),
            });
        }
        Ok(chain + 1)
    }

    fn multiplicative(&mut self) -> Result<Expr, SelectorError> {
        let mut left = self.unary()?;
        let mut chain = 0;
        loop {
            let op = match self.peek() {
                Token::Star => Arith::Mul,
                Token::Slash => Arith::Div,
                _ => return Ok(left),
            };
            self.at += 1;
            chain = self.chain_link(chain)?;
            let right = self.nested(Self::unary)?;
            left = Expr::Arith(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, SelectorError> {
        match self.peek() {
            Token::Minus => {
                self.at += 1;
                self.nested(|p| Ok(Expr::Neg(Box::new(p.unary()?))))
            }
            Token::Plus => {
                self.at += 1;
                self.nested(Self::unary)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, SelectorError> {
        Ok(match self.next() {
            Token::Str(s) => Expr::Literal(Literal::Str(s)),
            Token::Int(v) => Expr::Literal(Literal::Int(v)),
            Token::Float(v) => Expr::Literal(Literal::Float(v)),
            Token::True => Expr::Literal(Literal::Bool(true)),
            Token::False => Expr::Literal(Literal::Bool(false)),
            Token::Null => Expr::Null,
            Token::Ident(name) => Expr::Ident(Ident::resolve(name)),
            Token::LParen => {
                let inner = self.or()?;
                self.expect(&Token::RParen, "expected ')'")?;
                inner
            }
            _ => {
                self.at -= 1;
                return Err(self.error("expected a value, an identifier or '('"));
            }
        })
    }
}
