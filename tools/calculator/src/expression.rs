//! A small recursive-descent parser and evaluator for arithmetic expressions.
//!
//! Grammar (`^` binds tighter than unary minus and is right-associative, as in Python's `**`):
//! ```text
//! expr  := term (("+" | "-") term)*
//! term  := unary (("*" | "/" | "%") unary)*
//! unary := ("-" | "+") unary | power
//! power := atom ("^" unary)?
//! atom  := number | name "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//! Functions: abs, min, max, floor, ceil, round (ties to even; `round(x, digits)`), sqrt.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Signed;

use crate::arithmetic::{apply, Op};
use crate::number::{self, Real};

/// Longest expression accepted, in bytes.
pub const MAX_LENGTH: usize = 10_000;
/// Deepest nesting of parentheses and unary operators accepted.
pub const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    precision: u32,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.src[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.src[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at position {} of the expression", self.pos + 1)
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("expression nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Real, String> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Some('+') => Op::Add,
                Some('-') => Op::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = apply(op, &left, &self.term()?)?;
        }
    }

    fn term(&mut self) -> Result<Real, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some('*') if !self.src[self.pos..].starts_with("**") => Op::Mul,
                Some('/') => Op::Div,
                Some('%') => Op::Mod,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = apply(op, &left, &self.unary()?)?;
        }
    }

    fn unary(&mut self) -> Result<Real, String> {
        self.enter()?;
        let value = if self.eat('-') {
            let v = self.unary()?;
            Real { q: -v.q, inexact: v.inexact }
        } else if self.eat('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Ok(value)
    }

    fn power(&mut self) -> Result<Real, String> {
        let base = self.atom()?;
        self.skip_ws();
        if self.eat('^')
            || (self.src[self.pos..].starts_with("**") && {
                self.pos += 2;
                true
            })
        {
            let exp = self.unary()?;
            return apply(Op::Pow, &base, &exp);
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Real, String> {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                self.enter()?;
                let v = self.expr()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err(self.error("expected ')'"));
                }
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() => self.call(),
            Some(c) => Err(self.error(&format!("unexpected {c:?}"))),
            None => Err(self.error("unexpected end")),
        }
    }

    fn number(&mut self) -> Result<Real, String> {
        let rest = &self.src[self.pos..];
        let bytes = rest.as_bytes();
        let mut end = 0;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
            end += 1;
        }
        if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
            let mut k = end + 1;
            if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
                k += 1;
            }
            if k < bytes.len() && bytes[k].is_ascii_digit() {
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                end = k;
            }
        }
        let text = &rest[..end];
        self.pos += end;
        number::parse_str(text).map(Real::exact)
    }

    fn call(&mut self) -> Result<Real, String> {
        let rest = &self.src[self.pos..];
        let len = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len());
        let name = rest[..len].to_ascii_lowercase();
        self.pos += len;
        if !self.eat('(') {
            return Err(self.error(&format!("expected '(' after {name:?}")));
        }
        self.enter()?;
        let mut args = vec![self.expr()?];
        while self.eat(',') {
            args.push(self.expr()?);
        }
        self.depth -= 1;
        if !self.eat(')') {
            return Err(self.error("expected ')'"));
        }
        function(&name, args, self.precision)
    }
}

fn exact_int(i: BigInt, inexact: bool) -> Real {
    Real { q: BigRational::from_integer(i), inexact }
}

fn function(name: &str, mut args: Vec<Real>, precision: u32) -> Result<Real, String> {
    let one = |args: &[Real]| -> Result<Real, String> {
        match args {
            [x] => Ok(x.clone()),
            _ => Err(format!("{name} takes exactly one argument")),
        }
    };
    match name {
        "abs" => one(&args).map(|x| Real { q: x.q.abs(), inexact: x.inexact }),
        "floor" => one(&args).map(|x| exact_int(x.q.floor().to_integer(), x.inexact)),
        "ceil" => one(&args).map(|x| exact_int(x.q.ceil().to_integer(), x.inexact)),
        "sqrt" => number::sqrt(&one(&args)?, precision),
        "round" => match args.as_slice() {
            [x] => Ok(exact_int(number::round_half_even(&x.q), x.inexact)),
            [x, digits] => {
                let d = number::small_integer(&digits.q, "round's digits")?;
                if d.abs() > 1000 {
                    return Err("round's digits must be between -1000 and 1000".into());
                }
                let scale = BigRational::from_integer(number::pow10(d.unsigned_abs() as u32));
                let scale = if d >= 0 { scale } else { scale.recip() };
                let r = BigRational::from_integer(number::round_half_even(&(&x.q * &scale)));
                Ok(Real { q: r / scale, inexact: x.inexact })
            }
            _ => Err("round takes one or two arguments".into()),
        },
        "min" | "max" if !args.is_empty() => {
            let mut best = args.remove(0);
            for a in args {
                if (name == "min" && a.q < best.q) || (name == "max" && a.q > best.q) {
                    best = a;
                }
            }
            Ok(best)
        }
        "min" | "max" => Err(format!("{name} needs at least one argument")),
        other => Err(format!("unknown function {other:?}: use abs, min, max, floor, ceil, round or sqrt")),
    }
}

/// Evaluate `src`; square roots keep `precision` plus guard digits.
pub fn evaluate(src: &str, precision: u32) -> Result<Real, String> {
    if src.len() > MAX_LENGTH {
        return Err(format!("expression longer than {MAX_LENGTH} characters"));
    }
    let mut p = Parser { src, pos: 0, depth: 0, precision };
    let v = p.expr()?;
    if p.peek().is_some() {
        return Err(p.error("unexpected trailing input"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fraction;

    fn ev(s: &str) -> String {
        let v = evaluate(s, 28).unwrap();
        assert!(!v.inexact, "{s}");
        fraction(&v.q)
    }

    #[test]
    fn evaluates_exactly_with_python_precedence() {
        assert_eq!(ev("(1/3 + 1/6) * 2^10"), "512");
        assert_eq!(ev("0.1 + 0.2"), "3/10");
        assert_eq!(ev("1/3*3"), "1");
        assert_eq!(ev("-2^2"), "-4");
        assert_eq!(ev("2^-1"), "1/2");
        assert_eq!(ev("2^3^2"), "512");
        assert_eq!(ev("2**10"), "1024");
        assert_eq!(ev("-7 % 3"), "2");
        assert_eq!(ev("10^-30"), format!("1/1{}", "0".repeat(30)));
        assert_eq!(ev("max(1, 2.5, -3) + min(4, 1/2) + abs(-1)"), "4");
        assert_eq!(ev("floor(-1.5) + ceil(1.2) + round(2.5) + round(3.5)"), "6");
        assert_eq!(ev("round(2.675, 2)"), "67/25");
        assert_eq!(ev("sqrt(16/9)"), "4/3");
        assert_eq!(ev("1e3 + 2E-1"), "5001/5");
    }

    #[test]
    fn irrational_roots_are_marked_inexact() {
        let v = evaluate("sqrt(2) * sqrt(2)", 28).unwrap();
        assert!(v.inexact);
        assert_eq!(crate::format::decimal(&v, 20).text, "2.0000000000000000000");
    }

    #[test]
    fn bad_expressions_are_clear_errors() {
        for (src, needle) in [
            ("1/0", "division by zero"),
            ("2^0.5", "integer"),
            ("foo(1)", "unknown function"),
            ("(1", "expected ')'"),
            ("1 +", "unexpected end"),
            ("1 2", "trailing"),
            ("2^2^2^2^2^2", "size limit"),
            ("sqrt(-1)", "negative"),
            ("$", "unexpected"),
        ] {
            let err = evaluate(src, 28).unwrap_err();
            assert!(err.contains(needle), "{src}: {err}");
        }
        assert!(evaluate(&format!("{}1{}", "(".repeat(100), ")".repeat(100)), 28).unwrap_err().contains("nested"));
        assert!(evaluate(&"-".repeat(1000), 28).unwrap_err().contains("nested"));
        assert!(evaluate(&"1+".repeat(6000), 28).unwrap_err().contains("longer"));
    }
}
