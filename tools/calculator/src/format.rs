//! Rendering values: the exact fraction, and a decimal rounded to `precision` significant
//! digits (round half to even, as Python's `decimal`), saying whether that decimal is exact.

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{Signed, Zero};
use serde_json::{json, Value};

use crate::number::{exponent10, pow10, Real};

/// A decimal rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// The decimal string (`"0.3"`, `"1e-30"`, `"0.3333333333333333333333333333"`).
    pub text: String,
    /// True when `text` is exactly the value.
    pub exact: bool,
}

/// `q ≠ 0` rounded to `precision` significant digits, half to even: the signed digits, the
/// power of ten of the first digit, and whether the rounding was exact.
pub fn round_digits(q: &BigRational, precision: u32) -> (BigInt, i64, bool) {
    let mut e = exponent10(q);
    let shift = i64::from(precision) - 1 - e;
    let (n, d) = (q.numer().abs(), q.denom().clone());
    let (num, den) = if shift >= 0 { (n * pow10(shift as u32), d) } else { (n, d * pow10((-shift) as u32)) };
    let (mut digits, rem) = num.div_rem(&den);
    let twice: BigInt = &rem * 2;
    if twice > den || (twice == den && digits.is_odd()) {
        digits += 1;
        if digits == pow10(precision) {
            digits /= 10;
            e += 1;
        }
    }
    let signed = if q.is_negative() { -digits } else { digits };
    (signed, e, rem.is_zero())
}

/// Round `x` to `precision` significant digits, half to even. For an approximate `x` this
/// is only right once [`crate::approx::settle`] has made sure the rounding is decided.
pub fn decimal(x: &Real, precision: u32) -> Decimal {
    if x.q.is_zero() {
        return Decimal { text: "0".into(), exact: x.is_exact() };
    }
    let (digits, e, rem_zero) = round_digits(&x.q, precision);
    let exact = rem_zero && x.is_exact();
    let mut s = digits.magnitude().to_string();
    if exact {
        let trimmed = s.trim_end_matches('0').len().max(1);
        s.truncate(trimmed);
    }
    let sign = if digits.is_negative() { "-" } else { "" };
    Decimal { text: format!("{sign}{}", place(&s, e)), exact }
}

/// Place the point in significant digits `s` whose first digit has weight 10^e.
fn place(s: &str, e: i64) -> String {
    let len = s.len() as i64;
    if (0..40).contains(&e) {
        if len <= e + 1 {
            format!("{s}{}", "0".repeat((e + 1 - len) as usize))
        } else {
            format!("{}.{}", &s[..=e as usize], &s[e as usize + 1..])
        }
    } else if (-7..0).contains(&e) {
        format!("0.{}{s}", "0".repeat((-e - 1) as usize))
    } else {
        let mantissa = if len > 1 { format!("{}.{}", &s[..1], &s[1..]) } else { s.to_owned() };
        format!("{mantissa}e{}{}", if e >= 0 { "+" } else { "-" }, e.abs())
    }
}

/// The exact value as `"n"` or `"n/d"`.
pub fn fraction(q: &BigRational) -> String {
    if q.is_integer() {
        q.numer().to_string()
    } else {
        format!("{}/{}", q.numer(), q.denom())
    }
}

/// The JSON of a numeric result: exact fraction (or `null` if irrational), decimal, exactness.
pub fn number_json(x: &Real, precision: u32) -> Value {
    let d = decimal(x, precision);
    json!({
        "fraction": if !x.is_exact() { Value::Null } else { Value::String(fraction(&x.q)) },
        "decimal": d.text,
        "decimal_is_exact": d.exact,
        "precision": precision,
    })
}

/// The text form of a numeric result: the exact value when it is short, else `fraction ≈ decimal`.
pub fn number_text(x: &Real, precision: u32) -> String {
    let d = decimal(x, precision);
    if !x.is_exact() {
        format!("≈ {}", d.text)
    } else if d.exact || x.q.is_integer() {
        if x.q.is_integer() {
            fraction(&x.q)
        } else {
            d.text
        }
    } else {
        format!("{} ≈ {}", fraction(&x.q), d.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approx::sqrt;
    use crate::number::parse_str;

    fn dec(s: &str, p: u32) -> String {
        decimal(&Real::exact(parse_str(s).unwrap()), p).text
    }

    #[test]
    fn decimals_match_python_decimal() {
        assert_eq!(dec("1/3", 28), "0.3333333333333333333333333333");
        assert_eq!(dec("2/3", 28), "0.6666666666666666666666666667");
        assert_eq!(dec("0.3", 28), "0.3");
        assert_eq!(dec("1e-30", 28), "1e-30");
        assert_eq!(dec("-1/8", 2), "-0.12");
        assert_eq!(dec("3/8", 2), "0.38");
        assert_eq!(dec("999.96", 4), "1000");
        assert_eq!(dec("123456", 3), "123000");
        assert_eq!(dec("0.000123", 28), "0.000123");
        assert_eq!(dec("12345678901234567890123456789012345678901234567890", 5), "1.2346e+49");
        let x = decimal(&sqrt(&Real::int(2), 48).unwrap(), 28);
        assert_eq!((x.text.as_str(), x.exact), ("1.414213562373095048801688724", false));
    }

    #[test]
    fn texts_show_exact_values_first() {
        let third = Real::exact(parse_str("1/3").unwrap());
        assert_eq!(number_text(&third, 5), "1/3 ≈ 0.33333");
        assert_eq!(number_text(&Real::int(3), 28), "3");
        assert_eq!(number_text(&Real::exact(parse_str("0.25").unwrap()), 28), "0.25");
    }
}
