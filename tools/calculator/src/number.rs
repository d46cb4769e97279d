//! Numbers: exact rationals, parsing from JSON, limits, and the approximate values that
//! square roots introduce (their arithmetic is in [`crate::approx`]).

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use serde_json::Value;

use crate::approx::Bound;
use crate::approx::Stop;

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
/// Significant digits a JSON number (read as a 64-bit float) always carries exactly.
pub const FLOAT_DIGITS: usize = 15;

/// A value: exact, or an approximation with a proven error bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Real {
    /// The exact value, or the approximation.
    pub q: BigRational,
    /// `None` when `q` is the value; otherwise a bound on the distance between `q` and the
    /// value (after an irrational square root).
    pub error: Option<Bound>,
}

impl Real {
    /// An exact value.
    pub fn exact(q: BigRational) -> Self {
        Self { q, error: None }
    }

    /// An exact integer.
    pub fn int(i: i64) -> Self {
        Self::exact(BigRational::from_integer(BigInt::from(i)))
    }

    /// True when `q` is the value itself.
    pub fn is_exact(&self) -> bool {
        self.error.is_none()
    }
}

/// Refuse results larger than [`MAX_RESULT_BITS`].
pub fn check_size(q: &BigRational) -> Result<(), Stop> {
    if q.numer().bits() + q.denom().bits() > MAX_RESULT_BITS {
        Err(format!("the result exceeds the size limit of {MAX_RESULT_BITS} bits (about 30,000 digits)").into())
    } else {
        Ok(())
    }
}

/// 10^e as a big integer.
pub fn pow10(e: u32) -> BigInt {
    num_traits::pow(BigInt::from(10), e as usize)
}

fn parse_integer(s: &str, what: &str) -> Result<BigInt, Stop> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("malformed number {what:?}").into());
    }
    s.parse::<BigInt>().map_err(|_| Stop::Refused(format!("malformed number {what:?}")))
}

/// Parse `"12"`, `"-1.25"`, `".5"`, `"1e-30"`, `"6.02E23"` or `"-3/7"` into an exact rational.
pub fn parse_str(raw: &str) -> Result<BigRational, Stop> {
    let s = raw.trim();
    if s.len() > MAX_INPUT_DIGITS + 20 {
        return Err(format!("number too long: at most {MAX_INPUT_DIGITS} digits").into());
    }
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let q = if let Some((n, d)) = body.split_once('/') {
        let (n, d) = (parse_integer(n.trim(), raw)?, parse_integer(d.trim(), raw)?);
        if d.is_zero() {
            return Err(format!("division by zero in the fraction {raw:?}").into());
        }
        BigRational::new(n, d)
    } else {
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let e = body[i + 1..].parse::<i64>().map_err(|_| format!("malformed number {raw:?}"))?;
                if e.abs() > MAX_INPUT_EXPONENT {
                    return Err(format!("exponent of {raw:?} is beyond ±{MAX_INPUT_EXPONENT}").into());
                }
                (&body[..i], e)
            }
            None => (body, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("malformed number {raw:?}").into());
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

/// Significant digits of a decimal numeral such as `"-0.00120"` or `"1.25e+29"` (here 2 and 3).
fn significant_digits(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

/// Refuse a JSON number that serde_json had to read as a float and that the float may not
/// hold exactly: more than [`FLOAT_DIGITS`] significant digits, an integer of 2^53 or more
/// (a longer integer would have been rounded to it), or a subnormal (fewer digits held).
/// Integers within 64 bits are read exactly. (A literal so small it would be read as 0,
/// `1e-400`, never gets here: the gateway and the tool kit refuse it before reading the body.)
fn exact_json_float(text: &str, f: f64) -> Result<(), Stop> {
    const TWO_POW_53: f64 = 9_007_199_254_740_992.0;
    // Below the normal range a float holds fewer digits: the literal the caller wrote
    // (`3e-324`, `1.23456789012345e-320`) was already changed by the JSON reader.
    if f != 0.0 && f.abs() < f64::MIN_POSITIVE {
        return Err(format!(
            "the number {text} is below the range a JSON number holds exactly (about 2.2e-308); the \
             JSON reader may have changed it: pass it as a string, e.g. \"1.23456789012345e-320\""
        )
        .into());
    }
    if f.fract() == 0.0 && f.abs() >= TWO_POW_53 && significant_digits(text) <= FLOAT_DIGITS {
        // `1e19` fits 64 bits, but a float this large cannot show whether the integer the
        // caller wrote (`10000000000000000001.0` reads the same) was exact.
        return Err(format!(
            "the number {text} was read as a 64-bit float, which from 2^53 (9007199254740992) on cannot \
             show whether the integer written was exact: pass it as a string, e.g. \"{text}\""
        )
        .into());
    }
    if significant_digits(text) > FLOAT_DIGITS {
        return Err(format!(
            "the number {text} cannot be represented exactly as a JSON number (JSON numbers are read as \
             64-bit floats); pass numbers with more than {FLOAT_DIGITS} significant digits, or integers beyond \
             64 bits, as strings, e.g. \"123456789012345678901234567890\""
        )
        .into());
    }
    Ok(())
}

/// A number given as a JSON number or a string.
pub fn parse_value(v: &Value) -> Result<BigRational, Stop> {
    match v {
        // serde_json prints a float in its shortest round-trip form ("0.1"), which is what
        // the caller wrote when it has at most 15 significant digits; that decimal is taken
        // exactly. Longer floats were already rounded by the JSON reader and are refused.
        Value::Number(n) => {
            let text = n.to_string();
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                exact_json_float(&text, f)?;
            }
            parse_str(&text)
        }
        Value::String(s) => parse_str(s),
        other => Err(format!("expected a number (or a numeric string), got {other}").into()),
    }
}

/// The `precision` of a params object (default 28, at most 1000).
pub fn precision(params: &Value) -> Result<u32, Stop> {
    match params.get("precision") {
        None | Some(Value::Null) => Ok(DEFAULT_PRECISION),
        Some(v) => match v.as_u64() {
            Some(p) if (1..=u64::from(MAX_PRECISION)).contains(&p) => Ok(p as u32),
            _ => Err(format!("precision must be an integer from 1 to {MAX_PRECISION}").into()),
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
pub fn small_integer(q: &BigRational, what: &str) -> Result<i64, Stop> {
    if !q.is_integer() {
        return Err(format!("{what} must be an integer").into());
    }
    q.to_integer().to_i64().ok_or_else(|| Stop::Refused(format!("{what} is too large")))
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
    fn json_floats_that_may_not_be_what_was_sent_are_refused() {
        let long: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
        let err = parse_value(&long).unwrap_err().to_string();
        assert!(err.contains("the number 1.2345678901234568e+29 cannot be represented exactly"), "{err}");
        assert!(err.contains("more than 15 significant digits"), "{err}");
        assert_eq!(
            parse_value(&serde_json::json!("123456789012345678901234567890")).unwrap(),
            q("123456789012345678901234567890")
        );
        // Known limit: a longer literal whose float has a short form ("0.1000000000000000055"
        // reads as 0.1) cannot be told apart from that short form without the raw JSON text.
        // Subnormals: the float holds fewer digits than written (3e-324 reads as 5e-324,
        // 1.23456789012345e-320 as 1.2347e-320).
        for refused in [
            "123456789012345.6",
            "1e20",
            "9007199254740992.0",
            "-1e300",
            "0.10000000000000002",
            "3e-324",
            "1.23456789012345e-320",
            "-2e-310",
        ] {
            let v: Value = serde_json::from_str(refused).unwrap();
            assert!(parse_value(&v).is_err(), "{refused}");
        }
        // 1e19 fits 64 bits: the refusal says why it is refused (a float cannot show whether a
        // long integer was written exactly) and how to pass it, not that it is beyond 64 bits.
        let err = parse_value(&serde_json::from_str::<Value>("1e19").unwrap()).unwrap_err().to_string();
        assert!(err.contains("2^53") && err.contains("as a string") && !err.contains("beyond 64 bits"), "{err}");
        for (accepted, exact) in [
            ("0.123456789012345", "0.123456789012345"),
            ("123456789012345.0", "123456789012345"),
            ("2.5e-300", "2.5e-300"),
        ] {
            let v: Value = serde_json::from_str(accepted).unwrap();
            assert_eq!(parse_value(&v).unwrap(), q(exact), "{accepted}");
        }
        // Integers read as u64 or i64 are exact whatever their size.
        assert_eq!(parse_value(&serde_json::json!(u64::MAX)).unwrap(), q("18446744073709551615"));
        assert_eq!(parse_value(&serde_json::json!(i64::MIN)).unwrap(), q("-9223372036854775808"));
        assert_eq!((significant_digits("-0.00120"), significant_digits("1.25e29")), (2, 3));
    }

    #[test]
    fn exponents() {
        assert_eq!(exponent10(&q("999")), 2);
        assert_eq!(exponent10(&q("1000")), 3);
        assert_eq!(exponent10(&q("0.001")), -3);
        assert_eq!(exponent10(&q("0.00099")), -4);
    }

    #[test]
    fn rounds_half_to_even_like_python() {
        assert_eq!(round_half_even(&q("2.5")), 2.into());
        assert_eq!(round_half_even(&q("3.5")), 4.into());
        assert_eq!(round_half_even(&q("-2.5")), (-2).into());
        assert_eq!(round_half_even(&q("-2.6")), (-3).into());
    }
}
