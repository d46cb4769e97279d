//! The binary operators shared by `arithmetic`, `expression` and unit arithmetic.

use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

use crate::approx::{self, Stop};
use crate::number::{check_size, small_integer, Real, MAX_RESULT_BITS};
use crate::rational;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
    /// `%` (the sign of the result follows the divisor, as in Python)
    Mod,
}

impl Op {
    /// Parse a name (`add`) or symbol (`+`).
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "add" | "+" | "plus" => Self::Add,
            "sub" | "-" | "minus" | "subtract" => Self::Sub,
            "mul" | "*" | "×" | "times" | "multiply" => Self::Mul,
            "div" | "/" | "÷" | "divide" => Self::Div,
            "pow" | "^" | "**" | "power" => Self::Pow,
            "mod" | "%" => Self::Mod,
            other => {
                return Err(format!("unknown operator {other:?}: use add, sub, mul, div, pow, mod or + - * / ^ %"))
            }
        })
    }
}

/// `base^exp` for exp ≥ 0, refused before computing when the result would be too large.
fn exact_pow(base: &BigRational, exp: u64) -> Result<BigRational, String> {
    if base.is_zero() || base.abs().is_one() || exp == 0 {
        let r = if exp == 0 { BigRational::one() } else { base.clone() };
        return Ok(if base.is_negative() && exp % 2 == 0 { r.abs() } else { r });
    }
    // Refuse before computing: the result needs about exp times the base's bits.
    let bits = u128::from(base.numer().bits() + base.denom().bits());
    if bits.saturating_mul(u128::from(exp)) > u128::from(MAX_RESULT_BITS) {
        return Err(format!("pow result would exceed the size limit of {MAX_RESULT_BITS} bits"));
    }
    Ok(rational::pow(base, exp as usize))
}

fn pow(base: &BigRational, exp: i64) -> Result<BigRational, String> {
    if base.is_zero() && exp < 0 {
        return Err("division by zero: 0 raised to a negative power".into());
    }
    let r = exact_pow(base, exp.unsigned_abs())?;
    Ok(if exp < 0 { rational::recip(&r).unwrap_or_default() } else { r })
}

/// `a mod b` for b ≠ 0, with the sign of `b` (Python's `%`).
fn modulo(a: &BigRational, b: &BigRational) -> Option<BigRational> {
    let k = BigRational::from_integer(rational::div(a, b)?.floor().to_integer());
    Some(rational::sub(a, &rational::mul(b, &k)))
}

/// `op` on exact values.
fn exact(op: Op, a: &BigRational, b: &BigRational) -> Result<BigRational, String> {
    let q = match op {
        Op::Add => rational::add(a, b),
        Op::Sub => rational::sub(a, b),
        Op::Mul => rational::mul(a, b),
        Op::Div => rational::div(a, b).ok_or("division by zero")?,
        Op::Mod => modulo(a, b).ok_or("modulo by zero")?,
        Op::Pow => pow(a, small_integer(b, "the exponent of pow")?)?,
    };
    check_size(&q)?;
    Ok(q)
}

/// Apply `op`; `last` says no more guard digits will follow (see [`approx::settle`]).
pub fn combine(op: Op, a: &Real, b: &Real, last: bool) -> Result<Real, Stop> {
    if a.is_exact() && b.is_exact() {
        Ok(Real::exact(exact(op, &a.q, &b.q)?))
    } else {
        approx::apply(op, a, b, last)
    }
}

/// Apply `op`; errors are messages the caller can act on.
pub fn apply(op: Op, a: &Real, b: &Real) -> Result<Real, String> {
    Ok(combine(op, a, b, true)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::parse_str;

    fn r(s: &str) -> Real {
        Real::exact(parse_str(s).unwrap())
    }

    #[test]
    fn operators_are_exact() {
        assert_eq!(apply(Op::Add, &r("0.1"), &r("0.2")).unwrap(), r("0.3"));
        assert_eq!(apply(Op::Mul, &r("1/3"), &r("3")).unwrap(), r("1"));
        assert_eq!(apply(Op::Pow, &r("10"), &r("-30")).unwrap(), r("1e-30"));
        assert_eq!(apply(Op::Pow, &r("-2"), &r("3")).unwrap(), r("-8"));
        assert_eq!(apply(Op::Pow, &r("-1"), &r("1000000000000")).unwrap(), r("1"));
        assert_eq!(apply(Op::Mod, &r("-7"), &r("3")).unwrap(), r("2"));
        assert_eq!(apply(Op::Mod, &r("7"), &r("-3")).unwrap(), r("-2"));
        assert_eq!(apply(Op::Mod, &r("5.5"), &r("2")).unwrap(), r("1.5"));
    }

    #[test]
    fn bad_operations_are_refused_not_attempted() {
        assert!(apply(Op::Div, &r("1"), &r("0")).is_err());
        assert!(apply(Op::Mod, &r("1"), &r("0")).is_err());
        assert!(apply(Op::Pow, &r("0"), &r("-1")).is_err());
        assert!(apply(Op::Pow, &r("2"), &r("0.5")).is_err());
        assert_eq!(apply(Op::Mod, &r("1"), &r("0")).unwrap_err(), "modulo by zero");
        assert!(apply(Op::Pow, &r("2"), &r("10000000")).unwrap_err().contains("size limit"));
        assert!(apply(Op::Pow, &r("2"), &r("1e30")).is_err());
        assert!(Op::parse("xor").is_err());
    }
}
