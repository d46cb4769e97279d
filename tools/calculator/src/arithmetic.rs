//! The binary operators shared by `arithmetic`, `expression` and unit arithmetic.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

use crate::number::{check_size, small_integer, Real, MAX_RESULT_BITS};

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

fn pow(base: &BigRational, exp: i64) -> Result<BigRational, String> {
    if base.is_zero() && exp < 0 {
        return Err("division by zero: 0 raised to a negative power".into());
    }
    if base.is_zero() || base.abs().is_one() || exp == 0 {
        let r = if exp == 0 { BigRational::one() } else { base.clone() };
        return Ok(if base.is_negative() && exp % 2 == 0 { r.abs() } else { r });
    }
    // Refuse before computing: the result needs about |exp| times the base's bits.
    let bits = u128::from(base.numer().bits() + base.denom().bits());
    if bits.saturating_mul(u128::from(exp.unsigned_abs())) > u128::from(MAX_RESULT_BITS) {
        return Err(format!("pow result would exceed the size limit of {MAX_RESULT_BITS} bits"));
    }
    let r = num_traits::pow(base.clone(), exp.unsigned_abs() as usize);
    Ok(if exp < 0 { r.recip() } else { r })
}

/// Apply `op`; errors are messages the caller can act on.
pub fn apply(op: Op, a: &Real, b: &Real) -> Result<Real, String> {
    let inexact = a.inexact || b.inexact;
    let q = match op {
        Op::Add => &a.q + &b.q,
        Op::Sub => &a.q - &b.q,
        Op::Mul => &a.q * &b.q,
        Op::Div => {
            if b.q.is_zero() {
                return Err("division by zero".into());
            }
            &a.q / &b.q
        }
        Op::Mod => {
            if b.q.is_zero() {
                return Err("modulo by zero".into());
            }
            let floor: BigInt = (&a.q / &b.q).floor().to_integer();
            &a.q - &b.q * BigRational::from_integer(floor)
        }
        Op::Pow => {
            if b.inexact {
                return Err("pow needs an exact integer exponent".into());
            }
            pow(&a.q, small_integer(&b.q, "the exponent of pow")?)?
        }
    };
    check_size(&q)?;
    Ok(Real { q, inexact })
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
        assert!(apply(Op::Pow, &r("2"), &r("10000000")).unwrap_err().contains("size limit"));
        assert!(apply(Op::Pow, &r("2"), &r("1e30")).is_err());
        assert!(Op::parse("xor").is_err());
    }
}
