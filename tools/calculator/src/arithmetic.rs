//! The binary operators shared by `arithmetic`, `expression` and unit arithmetic.

use num_integer::Integer;
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
    pub fn parse(s: &str) -> Result<Self, Stop> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "add" | "+" | "plus" => Self::Add,
            "sub" | "-" | "minus" | "subtract" => Self::Sub,
            "mul" | "*" | "×" | "times" | "multiply" => Self::Mul,
            "div" | "/" | "÷" | "divide" => Self::Div,
            "pow" | "^" | "**" | "power" => Self::Pow,
            "mod" | "%" => Self::Mod,
            other => {
                return Err(
                    format!("unknown operator {other:?}: use add, sub, mul, div, pow, mod or + - * / ^ %").into()
                )
            }
        })
    }
}

/// `base^exp` for exp ≥ 0, refused before computing when the result would be too large.
fn exact_pow(base: &BigRational, exp: u64) -> Result<BigRational, Stop> {
    if base.is_zero() || base.abs().is_one() || exp == 0 {
        let r = if exp == 0 { BigRational::one() } else { base.clone() };
        return Ok(if base.is_negative() && exp % 2 == 0 { r.abs() } else { r });
    }
    // Refuse before computing only what surely exceeds the limit: a b-bit integer to the
    // n-th power has more than (b − 1)·n bits. What is computed is then held to the same size
    // rule as every other result (`check_size`), so 2^40000 (40,001 bits) is accepted.
    let at_least = |bits: u64| u128::from(bits - 1) * u128::from(exp) + 1;
    if at_least(base.numer().bits()) + at_least(base.denom().bits()) > u128::from(MAX_RESULT_BITS) {
        return Err(format!("the result exceeds the size limit of {MAX_RESULT_BITS} bits (about 30,000 digits)").into());
    }
    let q = rational::pow(base, exp as usize);
    check_size(&q)?;
    Ok(q)
}

fn pow(base: &BigRational, exp: i64) -> Result<BigRational, Stop> {
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
fn exact(op: Op, a: &BigRational, b: &BigRational) -> Result<BigRational, Stop> {
    let q = match op {
        Op::Add => rational::add(a, b),
        Op::Sub => rational::sub(a, b),
        Op::Mul => rational::mul(a, b),
        Op::Div => rational::div(a, b).ok_or("division by zero")?,
        Op::Mod => modulo(a, b).ok_or("modulo by zero")?,
        Op::Pow => match small_integer(b, "the exponent of pow") {
            Ok(n) => pow(a, n)?,
            // An integer exponent beyond 64 bits: only 0 and ±1 have a result within the limit.
            Err(_) if b.is_integer() && !a.is_zero() && !a.abs().is_one() => {
                return Err(format!(
                    "the result exceeds the size limit of {MAX_RESULT_BITS} bits (about 30,000 digits)"
                )
                .into())
            }
            Err(_) if b.is_integer() && a.is_zero() && b.is_positive() => BigRational::zero(),
            Err(_) if b.is_integer() && a.is_zero() => {
                return Err("division by zero: 0 raised to a negative power".into())
            }
            Err(_) if b.is_integer() && a.is_negative() && b.numer().is_odd() => -BigRational::one(),
            Err(_) if b.is_integer() => BigRational::one(),
            Err(e) => return Err(e),
        },
    };
    check_size(&q)?;
    Ok(q)
}

/// `a^(p/q)` for a fraction p/q in lowest terms (q > 1): the q-th root of a^p, exact when
/// it is (`4^0.5`, `8^(1/3)`), otherwise to `digits` significant digits with an error bound.
fn fractional_pow(a: &Real, e: &BigRational, digits: u32) -> Result<Real, Stop> {
    if !a.is_exact() {
        return Err("a fractional power of an approximate value (such as sqrt(2)^0.5) is not supported".into());
    }
    if a.q.is_negative() {
        return Err(format!(
            "a negative number to the fractional power {e} is not a real number; for a real odd root write \
             -(8^(1/3))"
        )
        .into());
    }
    let degree = u32::try_from(e.denom()).ok().filter(|n| *n <= approx::MAX_ROOT_DEGREE).ok_or_else(|| {
        format!("the exponent {e} is a root of degree {}: at most {} is supported", e.denom(), approx::MAX_ROOT_DEGREE)
    })?;
    let p = small_integer(&BigRational::from_integer(e.numer().clone()), "the numerator of the exponent")?;
    let powered = pow(&a.q, p)?;
    approx::nth_root(&powered, degree, digits)
}

/// Apply `op`, roots and integer parts of approximate values worked out to `digits`
/// significant digits (see [`approx::settle`]).
pub fn combine(op: Op, a: &Real, b: &Real, digits: u32) -> Result<Real, Stop> {
    if op == Op::Pow && b.is_exact() && !b.q.is_integer() {
        return fractional_pow(a, &b.q, digits);
    }
    if a.is_exact() && b.is_exact() {
        Ok(Real::exact(exact(op, &a.q, &b.q)?))
    } else {
        approx::apply(op, a, b, digits)
    }
}

/// Apply `op` to exact values, a result correctly rounded to `precision` digits when it is
/// not exact (`2^0.5`); errors are messages the caller can act on.
pub fn apply(op: Op, a: &Real, b: &Real, precision: u32) -> Result<Real, Stop> {
    approx::settle(precision, |digits| combine(op, a, b, digits))
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
        assert_eq!(apply(Op::Add, &r("0.1"), &r("0.2"), 28).unwrap(), r("0.3"));
        assert_eq!(apply(Op::Mul, &r("1/3"), &r("3"), 28).unwrap(), r("1"));
        assert_eq!(apply(Op::Pow, &r("10"), &r("-30"), 28).unwrap(), r("1e-30"));
        assert_eq!(apply(Op::Pow, &r("-2"), &r("3"), 28).unwrap(), r("-8"));
        assert_eq!(apply(Op::Pow, &r("-1"), &r("1000000000000"), 28).unwrap(), r("1"));
        assert_eq!(apply(Op::Mod, &r("-7"), &r("3"), 28).unwrap(), r("2"));
        assert_eq!(apply(Op::Mod, &r("7"), &r("-3"), 28).unwrap(), r("-2"));
        assert_eq!(apply(Op::Mod, &r("5.5"), &r("2"), 28).unwrap(), r("1.5"));
    }

    #[test]
    fn bad_operations_are_refused_not_attempted() {
        assert!(apply(Op::Div, &r("1"), &r("0"), 28).is_err());
        assert!(apply(Op::Mod, &r("1"), &r("0"), 28).is_err());
        assert!(apply(Op::Pow, &r("0"), &r("-1"), 28).is_err());
        assert!(apply(Op::Pow, &r("-2"), &r("0.5"), 28).is_err());
        assert_eq!(apply(Op::Mod, &r("1"), &r("0"), 28).unwrap_err().to_string(), "modulo by zero");
        assert!(apply(Op::Pow, &r("2"), &r("10000000"), 28).unwrap_err().to_string().contains("size limit"));
        assert!(apply(Op::Pow, &r("2"), &r("1e30"), 28).is_err());
        assert!(Op::parse("xor").is_err());
    }

    #[test]
    fn one_size_rule_for_powers_and_products() {
        // 2^40000 has 12,042 digits and 10^25000 25,001: both within the limit, as a product of
        // the same size is (10^20000 * 10^9000).
        assert_eq!(apply(Op::Pow, &r("2"), &r("40000"), 28).unwrap().q.numer().bits(), 40_001);
        assert!(apply(Op::Pow, &r("10"), &r("25000"), 28).is_ok());
        assert!(apply(Op::Pow, &r("10"), &r("31000"), 28).unwrap_err().to_string().contains("size limit"));
    }

    #[test]
    fn fractional_exponents_are_roots() {
        assert_eq!(apply(Op::Pow, &r("4"), &r("0.5"), 28).unwrap(), r("2"));
        assert_eq!(apply(Op::Pow, &r("8"), &r("1/3"), 28).unwrap(), r("2"));
        assert_eq!(apply(Op::Pow, &r("27/8"), &r("-2/3"), 28).unwrap(), r("4/9"));
        let root2 = apply(Op::Pow, &r("2"), &r("0.5"), 28).unwrap();
        assert_eq!(crate::format::decimal(&root2, 28).text, "1.414213562373095048801688724");
        let err = apply(Op::Pow, &r("-8"), &r("1/3"), 28).unwrap_err().to_string();
        assert!(err.contains("not a real number"), "{err}");
        assert!(apply(Op::Pow, &r("2"), &r("1/1001"), 28).unwrap_err().to_string().contains("degree"));
    }
}
