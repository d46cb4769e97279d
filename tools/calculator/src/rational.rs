//! Rational operations that stay fast on large values, and sums that refuse oversized
//! common denominators before building them.
//!
//! `num-rational` reduces every result with a gcd of two full-size operands (Stein's
//! algorithm, quadratic in the size), so folding many operands costs quadratic time per
//! step. Here the operands are already reduced, which lets each operation take gcds of a
//! large number with a small one (Knuth, TAOCP 4.5.1), and such a gcd starts with one
//! division that brings the large number down to the small one's size.

use std::collections::HashMap;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

use crate::approx::Stop;
use crate::number::MAX_RESULT_BITS;

/// The greatest common divisor (non-negative); a first remainder step makes it cheap when
/// one number is much longer than the other.
pub fn gcd(a: &BigInt, b: &BigInt) -> BigInt {
    let (a, b) = (a.magnitude(), b.magnitude());
    let (long, short) = if a.bits() >= b.bits() { (a, b) } else { (b, a) };
    if short.is_zero() {
        return BigInt::from(long.clone());
    }
    // Approximations have power-of-two denominators: gcd(a, 2^k) = 2^min(tz(a), k).
    if long.count_ones() == 1 || short.count_ones() == 1 {
        let twos = long.trailing_zeros().unwrap_or(0).min(short.trailing_zeros().unwrap_or(0));
        return BigInt::from(1) << twos;
    }
    let g = if long.bits() > short.bits() + 64 { (long % short).gcd(short) } else { long.gcd(short) };
    BigInt::from(g)
}

/// `n/d` in lowest terms (the denominator must be positive).
fn reduced(n: BigInt, d: BigInt) -> BigRational {
    if n.is_zero() {
        return BigRational::zero();
    }
    let g = gcd(&n, &d);
    if g.is_one() {
        BigRational::new_raw(n, d)
    } else {
        BigRational::new_raw(n / &g, d / g)
    }
}

/// `a + b`.
pub fn add(a: &BigRational, b: &BigRational) -> BigRational {
    let (an, ad, bn, bd) = (a.numer(), a.denom(), b.numer(), b.denom());
    let g = gcd(ad, bd);
    if g.is_one() {
        return reduced_by_coprime(an * bd + bn * ad, ad * bd);
    }
    // a/b + c/d = t / ((b/g)·d) with t = a·(d/g) + c·(b/g); only gcd(t, g) can cancel.
    let (adg, bdg) = (ad / &g, bd / &g);
    let t = an * &bdg + bn * &adg;
    if t.is_zero() {
        return BigRational::zero();
    }
    let g2 = gcd(&t, &g);
    BigRational::new_raw(t / &g2, adg * (bd / g2))
}

/// A sum over coprime denominators is already in lowest terms (zero aside).
fn reduced_by_coprime(n: BigInt, d: BigInt) -> BigRational {
    if n.is_zero() {
        BigRational::zero()
    } else {
        BigRational::new_raw(n, d)
    }
}

/// `a − b`.
pub fn sub(a: &BigRational, b: &BigRational) -> BigRational {
    add(a, &-b)
}

/// `a · b`.
pub fn mul(a: &BigRational, b: &BigRational) -> BigRational {
    if a.is_zero() || b.is_zero() {
        return BigRational::zero();
    }
    let g1 = gcd(a.numer(), b.denom());
    let g2 = gcd(b.numer(), a.denom());
    BigRational::new_raw((a.numer() / &g1) * (b.numer() / &g2), (a.denom() / g2) * (b.denom() / g1))
}

/// `1 / q`, or `None` for zero.
pub fn recip(q: &BigRational) -> Option<BigRational> {
    if q.is_zero() {
        return None;
    }
    let (n, d) = (q.numer(), q.denom());
    Some(if n.is_negative() { BigRational::new_raw(-d, -n) } else { BigRational::new_raw(d.clone(), n.clone()) })
}

/// `a / b`, or `None` when `b` is zero.
pub fn div(a: &BigRational, b: &BigRational) -> Option<BigRational> {
    recip(b).map(|r| mul(a, &r))
}

/// `q²` (the square of a reduced fraction is reduced).
pub fn square(q: &BigRational) -> BigRational {
    BigRational::new_raw(q.numer() * q.numer(), q.denom() * q.denom())
}

/// `q^e` for e ≥ 0, without intermediate reductions (powers of coprime parts stay coprime).
pub fn pow(q: &BigRational, e: usize) -> BigRational {
    BigRational::new_raw(num_traits::pow(q.numer().clone(), e), num_traits::pow(q.denom().clone(), e))
}

/// The exact sum of `values`, refused before any work when the distinct denominators'
/// sizes add up to more than [`MAX_RESULT_BITS`] (their product bounds the common
/// denominator), and during the work if the running sum outgrows that limit.
pub fn sum(values: &[BigRational]) -> Result<BigRational, Stop> {
    // Values sharing a denominator add as integers.
    let mut groups: HashMap<&BigInt, BigInt> = HashMap::new();
    for v in values {
        *groups.entry(v.denom()).or_default() += v.numer();
    }
    let bits: u64 = groups.keys().map(|d| d.bits()).sum();
    if bits > MAX_RESULT_BITS {
        return Err(format!(
            "the {} distinct denominators of these values could make a common denominator of up to {bits} bits, \
             over the size limit of {MAX_RESULT_BITS} bits; round the values to fewer decimals or pass fewer of them",
            groups.len()
        )
        .into());
    }
    let mut total = BigRational::zero();
    for (d, n) in groups {
        total = add(&total, &reduced(n, d.clone()));
        if total.numer().bits() + total.denom().bits() > MAX_RESULT_BITS {
            return Err(format!("the sum exceeds the size limit of {MAX_RESULT_BITS} bits").into());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::parse_str;

    fn q(s: &str) -> BigRational {
        parse_str(s).unwrap()
    }

    #[test]
    fn operations_agree_with_num_rational() {
        let xs = ["0", "1", "-1", "3/4", "-5/6", "7/12", "1e-30", "-123456789/1000", "2/9"];
        for a in xs {
            for b in xs {
                let (a, b) = (q(a), q(b));
                assert_eq!(add(&a, &b), &a + &b);
                assert_eq!(sub(&a, &b), &a - &b);
                assert_eq!(mul(&a, &b), &a * &b);
                if !b.is_zero() {
                    assert_eq!(div(&a, &b), Some(&a / &b));
                }
                assert_eq!(square(&a), &a * &a);
                assert_eq!(pow(&a, 3), &a * &a * &a);
            }
        }
        assert_eq!(div(&q("1"), &q("0")), None);
        assert_eq!(gcd(&BigInt::from(-12), &BigInt::from(18)), BigInt::from(6));
        assert_eq!(gcd(&BigInt::from(0), &BigInt::from(-5)), BigInt::from(5));
        assert_eq!(gcd(&BigInt::from(-96), &BigInt::from(1 << 20)), BigInt::from(32));
        assert_eq!(gcd(&BigInt::from(8), &BigInt::from(7)), BigInt::from(1));
    }

    #[test]
    fn sums_group_denominators_and_refuse_oversized_ones() {
        assert_eq!(sum(&[q("1/3"), q("1/6"), q("0.5"), q("2/3")]).unwrap(), q("5/3"));
        assert_eq!(sum(&[]).unwrap(), q("0"));
        let harmonic: Vec<_> = (1..=100_000).map(|k| q(&format!("1/{k}"))).collect();
        let err = sum(&harmonic).unwrap_err().to_string();
        assert!(err.contains("distinct denominators") && err.contains("size limit"), "{err}");
    }
}
