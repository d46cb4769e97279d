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
//!
//! An expression whose value is approximate (it takes an irrational square root) is
//! evaluated again with more guard digits until its rounding is decided ([`approx::settle`]).

use num_rational::BigRational;
use num_traits::Signed;

use crate::approx::{self, Rounding, Stop};
use crate::arithmetic::{combine, Op};
use crate::number::{self, Real};

/// Longest expression accepted, in bytes.
pub const MAX_LENGTH: usize = 10_000;
/// Deepest nesting of parentheses and unary operators accepted.
pub const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    /// Significant digits square roots and integer parts are computed to.
    digits: u32,
}

type Eval = Result<Real, Stop>;

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

    fn apply(&self, op: Op, a: &Real, b: &Real) -> Eval {
        combine(op, a, b, self.digits)
    }

    fn enter(&mut self) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("expression nested deeper than {MAX_DEPTH} levels").into());
        }
        Ok(())
    }

    fn expr(&mut self) -> Eval {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Some('+') => Op::Add,
                Some('-') => Op::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.term()?;
            left = self.apply(op, &left, &right)?;
        }
    }

    fn term(&mut self) -> Eval {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some('*') if !self.src[self.pos..].starts_with("**") => Op::Mul,
                Some('/') => Op::Div,
                Some('%') => Op::Mod,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = self.apply(op, &left, &right)?;
        }
    }

    /// A sign nests (`--5`, `-(-(…))` count a level per sign); a plain operand does not, so a
    /// level of parentheses counts once, as users count it.
    fn unary(&mut self) -> Eval {
        if self.eat('-') {
            self.enter()?;
            let v = self.unary()?;
            self.depth -= 1;
            Ok(Real { q: -v.q, error: v.error })
        } else if self.eat('+') {
            self.enter()?;
            let v = self.unary()?;
            self.depth -= 1;
            Ok(v)
        } else {
            self.power()
        }
    }

    fn power(&mut self) -> Eval {
        let base = self.atom()?;
        self.skip_ws();
        if self.eat('^')
            || (self.src[self.pos..].starts_with("**") && {
                self.pos += 2;
                true
            })
        {
            let exp = self.unary()?;
            return self.apply(Op::Pow, &base, &exp);
        }
        Ok(base)
    }

    fn atom(&mut self) -> Eval {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                self.enter()?;
                let v = self.expr()?;
                self.depth -= 1;
                if !self.eat(')') {
                    return Err(self.error("expected ')'").into());
                }
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() => self.call(),
            Some(c) => Err(self.error(&format!("unexpected {c:?}")).into()),
            None => Err(self.error("unexpected end").into()),
        }
    }

    fn number(&mut self) -> Eval {
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
        Ok(Real::exact(number::parse_str(text)?))
    }

    fn call(&mut self) -> Eval {
        let rest = &self.src[self.pos..];
        let len = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len());
        let name = rest[..len].to_ascii_lowercase();
        self.pos += len;
        if !self.eat('(') {
            return Err(self.error(&format!("expected '(' after {name:?}")).into());
        }
        self.enter()?;
        let mut args = vec![self.expr()?];
        while self.eat(',') {
            args.push(self.expr()?);
        }
        self.depth -= 1;
        if !self.eat(')') {
            return Err(self.error("expected ')'").into());
        }
        self.function(&name, args)
    }
}

impl Parser<'_> {
    fn function(&self, name: &str, args: Vec<Real>) -> Eval {
        let one = |args: &[Real]| -> Result<Real, Stop> {
            match args {
                [x] => Ok(x.clone()),
                _ => Err(format!("{name} takes exactly one argument").into()),
            }
        };
        match name {
            "abs" => one(&args).map(|x| Real { q: x.q.abs(), error: x.error }),
            "floor" => approx::to_integer(Rounding::Floor, &one(&args)?, self.digits),
            "ceil" => approx::to_integer(Rounding::Ceil, &one(&args)?, self.digits),
            "sqrt" => approx::sqrt(&one(&args)?, self.digits),
            "round" => match args.as_slice() {
                [x] => approx::to_integer(Rounding::HalfEven, x, self.digits),
                [x, digits] => self.round_to(x, digits),
                _ => Err("round takes one or two arguments".into()),
            },
            "min" | "max" => {
                approx::extreme(args, name == "max").ok_or_else(|| format!("{name} needs at least one argument").into())
            }
            other => Err(format!("unknown function {other:?}: use abs, min, max, floor, ceil, round or sqrt").into()),
        }
    }

    /// `round(x, digits)`: x rounded, ties to even, to a multiple of 10^-digits.
    fn round_to(&self, x: &Real, digits: &Real) -> Eval {
        if !digits.is_exact() {
            return Err("round's digits must be an exact integer".into());
        }
        let d = number::small_integer(&digits.q, "round's digits")?;
        if d.abs() > 1000 {
            return Err("round's digits must be between -1000 and 1000".into());
        }
        let scale = BigRational::from_integer(number::pow10(d.unsigned_abs() as u32));
        let scale = Real::exact(if d >= 0 { scale } else { scale.recip() });
        let scaled = self.apply(Op::Mul, x, &scale)?;
        let rounded = approx::to_integer(Rounding::HalfEven, &scaled, self.digits)?;
        self.apply(Op::Div, &rounded, &scale)
    }
}

/// Evaluate once, square roots computed to `digits` significant digits.
fn evaluate_once(src: &str, digits: u32) -> Eval {
    let mut p = Parser { src, pos: 0, depth: 0, digits };
    let v = p.expr()?;
    if p.peek().is_some() {
        return Err(p.error("unexpected trailing input").into());
    }
    Ok(v)
}

/// Evaluate `src`; an approximate value is correctly rounded to `precision` digits or refused.
/// The operators people paste from documents are read as what they mean: `−` (U+2212, minus
/// sign) as `-`, `×` as `*`, `÷` as `/`.
pub fn evaluate(src: &str, precision: u32) -> Result<Real, Stop> {
    if src.len() > MAX_LENGTH {
        return Err(format!("expression longer than {MAX_LENGTH} characters").into());
    }
    let pasted = |c: char| matches!(c, '\u{2212}' | '\u{d7}' | '\u{f7}');
    let src: std::borrow::Cow<'_, str> = if src.contains(pasted) {
        src.chars()
            .map(|c| match c {
                '\u{2212}' => '-',
                '\u{d7}' => '*',
                '\u{f7}' => '/',
                c => c,
            })
            .collect::<String>()
            .into()
    } else {
        src.into()
    };
    approx::settle(precision, |digits| evaluate_once(&src, digits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::fraction;

    fn ev(s: &str) -> String {
        let v = evaluate(s, 28).unwrap();
        assert!(v.is_exact(), "{s}");
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
        // Pasted from a document: the minus sign, times and division signs.
        assert_eq!(ev("\u{2212}5 \u{d7} 3 \u{f7} 2"), "-15/2");
        assert_eq!(ev("-7 % 3"), "2");
        assert_eq!(ev("10^-30"), format!("1/1{}", "0".repeat(30)));
        assert_eq!(ev("max(1, 2.5, -3) + min(4, 1/2) + abs(-1)"), "4");
        assert_eq!(ev("floor(-1.5) + ceil(1.2) + round(2.5) + round(3.5)"), "6");
        assert_eq!(ev("round(2.675, 2)"), "67/25");
        assert_eq!(ev("sqrt(16/9)"), "4/3");
        assert_eq!(ev("1e3 + 2E-1"), "5001/5");
    }

    /// Approximate results: (decimal at precision 28, exact?) of `src`.
    fn approx(src: &str) -> (String, bool) {
        let v = evaluate(src, 28).unwrap();
        (crate::format::decimal(&v, 28).text, v.is_exact())
    }

    // Expected values from Python: decimal.getcontext().prec = 300, the same expression,
    // then rounded to 28 digits (ROUND_HALF_EVEN).
    #[test]
    fn irrational_results_are_correctly_rounded_despite_cancellation() {
        // 4.99999999999999999999999999999999999999987500…E-21
        assert_eq!(approx("sqrt(10^40+1) - 10^20"), ("5.000000000000000000000000000e-21".into(), false));
        // 2.096980785696718753769480731766797379907324784621…E-28
        assert_eq!(
            approx("sqrt(2) - 1.414213562373095048801688724"),
            ("2.096980785696718753769480732e-28".into(), false)
        );
        // 1.238669782255346722122001946550504…E+50: the divisor is below the first level's error.
        assert_eq!(
            approx("1/(sqrt(2) - 1.41421356237309504880168872420969807856967187537694)"),
            ("1.238669782255346722122001947e+50".into(), false)
        );
        assert_eq!(approx("sqrt(2) * sqrt(2)"), ("2.000000000000000000000000000".into(), false));
        assert_eq!(approx("sqrt(3) % 1"), ("0.7320508075688772935274463415".into(), false));
    }

    #[test]
    fn floor_ceil_and_round_of_approximate_values_are_decided() {
        // Proven integers are exact: the interval lies between two integers.
        assert_eq!(ev("floor(sqrt(2))"), "1");
        assert_eq!(ev("floor(sqrt(2) * 10^20)"), "141421356237309504880");
        assert_eq!(ev("round(sqrt(2), 3)"), "707/500");
        // 10^25 − sqrt(10^50+1) ≈ −5.0E-26: the first level cannot tell it from 0.
        assert_eq!(ev("floor(10^25 - sqrt(10^50+1))"), "-1");
        // ≈ −5E-321 and +5E-321: past 600 guard digits, decided by the 2000-digit level (mpmath:
        // floor(10^320 − sqrt(10^640+1)) + 5 = 4, ceil(sqrt(10^640+1) − 10^320) + 5 = 6).
        assert_eq!(ev("floor(10^320 - sqrt(10^640+1)) + 5"), "4");
        assert_eq!(ev("ceil(sqrt(10^640+1) - 10^320) + 5"), "6");
        // An integer part longer than the precision gets the digits it needs.
        assert_eq!(ev("floor(sqrt(2) * 10^100) % 1000"), "727");
        let rounded = evaluate("round(sqrt(2), 700)", 28).unwrap();
        assert!(rounded.is_exact());
        let digits = crate::format::fraction(&(rounded.q * BigRational::from_integer(number::pow10(700))));
        assert!(digits.starts_with("14142135623730950488016887242096980785696718753769") && digits.len() == 701);
    }

    #[test]
    fn values_on_an_integer_boundary_are_refused_never_guessed() {
        // sqrt(2)·sqrt(2) is 2, but no number of digits proves it is not just below.
        for src in ["floor(sqrt(2)*sqrt(2))", "ceil(sqrt(2)*sqrt(2))", "(sqrt(2)*sqrt(2)) % 1"] {
            let err = evaluate(src, 28).unwrap_err().to_string();
            assert!(err.contains("simplify the expression"), "{src}: {err}");
        }
    }

    #[test]
    fn values_that_cannot_be_settled_are_refused() {
        let err = evaluate("sqrt(2)*sqrt(2) - 2", 28).unwrap_err().to_string();
        assert!(err.contains("could not be determined to 28 significant digits"), "{err}");
        let err = evaluate("1/(sqrt(2)*sqrt(2) - 2)", 28).unwrap_err().to_string();
        assert!(err.contains("divisor could not be told apart from zero"), "{err}");
    }

    #[test]
    fn bad_expressions_are_clear_errors() {
        for (src, needle) in [
            ("1/0", "division by zero"),
            ("(-8)^(1/3)", "not a real number"),
            ("sqrt(2)^0.5", "approximate value"),
            ("foo(1)", "unknown function"),
            ("(1", "expected ')'"),
            ("1 +", "unexpected end"),
            ("1 2", "trailing"),
            ("2^2^2^2^2^2", "size limit"),
            ("sqrt(-1)", "negative"),
            ("$", "unexpected"),
        ] {
            let err = evaluate(src, 28).unwrap_err().to_string();
            assert!(err.contains(needle), "{src}: {err}");
        }
        assert!(evaluate(&format!("{}1{}", "(".repeat(100), ")".repeat(100)), 28)
            .unwrap_err()
            .to_string()
            .contains("nested"));
        // Fractional exponents are roots: exact when they are, else correctly rounded.
        assert_eq!(ev("4^0.5"), "2");
        assert_eq!(ev("8^(1/3)"), "2");
        assert_eq!(approx("2^0.5"), ("1.414213562373095048801688724".into(), false));
        // mpmath: cbrt(10) = 2.15443469003188372175929356651935…
        // The helper's runaway: seconds of uninterruptible work per root, now bounded.
        let started = std::time::Instant::now();
        let err = evaluate("3^(999/1000)+5^(997/1000)+7^(991/1000)", 1000).unwrap_err().to_string();
        assert!(err.contains("lower the precision"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        // Python decimal: 3 ** (999/1000) = 2.99670597289463446044898138413…
        assert_eq!(approx("3^(999/1000)").0, "2.996705972894634460448981384");
        assert_eq!(approx("10^(1/3)"), ("2.154434690031883721759293567".into(), false));
        // A level of parentheses counts once: 64 levels are accepted (before: refused at 32).
        let deep = format!("{}1{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(evaluate(&deep, 28).unwrap().q, number::parse_str("1").unwrap());
        assert!(evaluate(&format!("{}1{}", "(".repeat(65), ")".repeat(65)), 28).is_err());
        assert!(evaluate(&"-".repeat(1000), 28).unwrap_err().to_string().contains("nested"));
        assert!(evaluate(&"1+".repeat(6000), 28).unwrap_err().to_string().contains("longer"));
    }
}
