//! Numbers: exact rationals, parsing from JSON, limits, and the approximate values that
//! square roots introduce.

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use serde_json::Value;

/// Digits accepted in one input number.
pub const MAX_INPUT_DIGITS: usize = 1000;
/// Largest decimal exponent accepted in an input number (`1e-5000` is refused).
pub const MAX_INPUT_EXPONENT: i64 = 1000;
/// Largest result size, in bits of numerator plus denominator (about 30,000 decimal digits).
pub const MAX_RESULT_BITS: u64 = 100_000;
/// Default and largest precision (significant digits of the decimal rendering).
pub const DEFAULT_PRECISION: u32 = 28;
/// Largest precision accepted.
pub const MAX_PRECISION: u32 = 1000;
/// Guard digits kept beyond the requested precision when a value is approximate.
pub const GUARD_DIGITS: u32 = 20;

/// A value: exact, or an approximation that is slightly below the true value (`inexact`).
#[derive(Debug, Clone, PartialEq)]
pub struct Real {
    /// The exact value, or the approximation.
    pub q: BigRational,
    /// True when `q` only approximates the true value (e.g. after an irrational square root).
    pub inexact: bool,
}

impl Real {
    /// An exact value.
    pub fn exact(q: BigRational) -> Self {
        Self { q, inexact: false }
    }

    /// An exact integer.
    pub fn int(i: i64) -> Self {
        Self::exact(BigRational::from_integer(BigInt::from(i)))
    }
}

/// Refuse results larger than [`MAX_RESULT_BITS`].
pub fn check_size(q: &BigRational) -> Result<(), String> {
    if q.numer().bits() + q.denom().bits() > MAX_RESULT_BITS {
        Err(format!("the result exceeds the size limit of {MAX_RESULT_BITS} bits (about 30,000 digits)"))
    } else {
        Ok(())
    }
}

/// 10^e as a big integer.
pub fn pow10(e: u32) -> BigInt {
    num_traits::pow(BigInt::from(10), e as usize)
}

fn parse_integer(s: &str, what: &str) -> Result<BigInt, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("malformed number {what:?}"));
    }
    s.parse::<BigInt>().map_err(|_| format!("malformed number {what:?}"))
}

/// Parse `"12"`, `"-1.25"`, `".5"`, `"1e-30"`, `"6.02E23"` or `"-3/7"` into an exact rational.
pub fn parse_str(raw: &str) -> Result<BigRational, String> {
    let s = raw.trim();
    if s.len() > MAX_INPUT_DIGITS + 20 {
        return Err(format!("number too long: at most {MAX_INPUT_DIGITS} digits"));
    }
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let q = if let Some((n, d)) = body.split_once('/') {
        let (n, d) = (parse_integer(n.trim(), raw)?, parse_integer(d.trim(), raw)?);
        if d.is_zero() {
            return Err(format!("division by zero in the fraction {raw:?}"));
        }
        BigRational::new(n, d)
    } else {
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let e = body[i + 1..].parse::<i64>().map_err(|_| format!("malformed number {raw:?}"))?;
                if e.abs() > MAX_INPUT_EXPONENT {
                    return Err(format!("exponent of {raw:?} is beyond ±{MAX_INPUT_EXPONENT}"));
                }
                (&body[..i], e)
            }
            None => (body, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("malformed number {raw:?}"));
        }
        let digits = format!("{int_part}{frac_part}");
        let n = parse_integer(&digits, raw)?;
        let scale = exponent - frac_part.len() as i64;
        let factor = pow10(scale.unsigned_abs() as u32);
        if scale >= 0 {
            BigRational::from_integer(n * factor)
        } else {
            BigRational::new(n, factor)
        }
    };
    Ok(if negative { -q } else { q })
}

/// A number given as a JSON number or a string.
pub fn parse_value(v: &Value) -> Result<BigRational, String> {
    match v {
        // serde_json prints a float in its shortest round-trip form ("0.1"), which is what
        // the caller wrote; that decimal is taken exactly.
        Value::Number(n) => parse_str(&n.to_string()),
        Value::String(s) => parse_str(s),
        other => Err(format!("expected a number (or a numeric string), got {other}")),
    }
}

/// The `precision` of a params object (default 28, at most 1000).
pub fn precision(params: &Value) -> Result<u32, String> {
    match params.get("precision") {
        None | Some(Value::Null) => Ok(DEFAULT_PRECISION),
        Some(v) => match v.as_u64() {
            Some(p) if (1..=u64::from(MAX_PRECISION)).contains(&p) => Ok(p as u32),
            _ => Err(format!("precision must be an integer from 1 to {MAX_PRECISION}")),
        },
    }
}

/// floor(log10(|q|)) for q ≠ 0.
pub fn exponent10(q: &BigRational) -> i64 {
    let (n, d) = (q.numer().abs(), q.denom().clone());
    let mut e = n.to_string().len() as i64 - d.to_string().len() as i64;
    // q < 10^e  ⇔  n < d·10^e
    let below = |e: i64| {
        if e >= 0 {
            n < &d * pow10(e as u32)
        } else {
            &n * pow10((-e) as u32) < d
        }
    };
    if below(e) {
        e -= 1;
    }
    e
}

/// The square root of a non-negative value: exact when both parts are perfect squares,
/// otherwise `precision + GUARD_DIGITS` correct digits, truncated (so marked `inexact`).
pub fn sqrt(x: &Real, precision: u32) -> Result<Real, String> {
    if x.q.is_negative() {
        return Err("square root of a negative number".into());
    }
    if x.q.is_zero() {
        return Ok(Real { q: BigRational::zero(), inexact: x.inexact });
    }
    let (n, d) = (x.q.numer(), x.q.denom());
    let (rn, rd) = (n.sqrt(), d.sqrt());
    if !x.inexact && &(&rn * &rn) == n && &(&rd * &rd) == d {
        return Ok(Real::exact(BigRational::new(rn, rd)));
    }
    // floor(sqrt(floor(x·10^2m))) = floor(sqrt(x)·10^m): choose m for enough digits.
    let digits = i64::from(precision + GUARD_DIGITS);
    let m = (digits - exponent10(&x.q) / 2 + 2).max(0) as u32;
    let scaled = (x.q.clone() * BigRational::from_integer(pow10(2 * m))).floor().to_integer();
    Ok(Real { q: BigRational::new(scaled.sqrt(), pow10(m)), inexact: true })
}

/// Python's `round`: to the nearest integer, ties to even.
pub fn round_half_even(q: &BigRational) -> BigInt {
    let floor = q.floor().to_integer();
    let frac = q - BigRational::from_integer(floor.clone());
    let half = BigRational::new(BigInt::one(), BigInt::from(2));
    if frac > half || (frac == half && floor.is_odd()) {
        floor + 1
    } else {
        floor
    }
}

/// An exponent for `pow` must be a small integer.
pub fn small_integer(q: &BigRational, what: &str) -> Result<i64, String> {
    if !q.is_integer() {
        return Err(format!("{what} must be an integer"));
    }
    q.to_integer().to_i64().ok_or_else(|| format!("{what} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> BigRational {
        parse_str(s).unwrap()
    }

    #[test]
    fn parses_every_accepted_form_exactly() {
        assert_eq!(q("0.1") + q("0.2"), q("3/10"));
        assert_eq!(q("-3/7"), BigRational::new((-3).into(), 7.into()));
        assert_eq!(q("1e-30"), BigRational::new(1.into(), pow10(30)));
        assert_eq!(q("6.02E23"), BigRational::from_integer(BigInt::from(602) * pow10(21)));
        assert_eq!(q(".5"), q("1/2"));
        assert_eq!(q("+2."), q("2"));
        assert_eq!(parse_value(&serde_json::json!(0.1)).unwrap(), q("1/10"));
        for bad in ["", "abc", "1/0", "1e", "--1", "1.2.3", "1e99999", "0x10", "1 2"] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
        assert!(parse_str(&"9".repeat(5000)).is_err());
    }

    #[test]
    fn exponent_and_sqrt() {
        assert_eq!(exponent10(&q("999")), 2);
        assert_eq!(exponent10(&q("1000")), 3);
        assert_eq!(exponent10(&q("0.001")), -3);
        assert_eq!(exponent10(&q("0.00099")), -4);
        assert_eq!(sqrt(&Real::exact(q("9/16")), 28).unwrap(), Real::exact(q("3/4")));
        let r2 = sqrt(&Real::exact(q("2")), 10).unwrap();
        assert!(r2.inexact);
        let (lo, hi) = (q("1.41421356237309504880168"), q("1.41421356237309504880169"));
        assert!(lo < r2.q && r2.q < hi, "{}", r2.q);
        assert!(sqrt(&Real::int(-1), 10).is_err());
    }

    #[test]
    fn rounds_half_to_even_like_python() {
        assert_eq!(round_half_even(&q("2.5")), 2.into());
        assert_eq!(round_half_even(&q("3.5")), 4.into());
        assert_eq!(round_half_even(&q("-2.5")), (-2).into());
        assert_eq!(round_half_even(&q("-2.6")), (-3).into());
    }
}
