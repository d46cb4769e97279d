//! Roots: square and n-th roots of exact values, to a requested number of digits with a
//! proven error bound (exact when the root is rational).

use super::*;

/// Bits giving `digits` significant decimal digits (3.322 ≥ log2 10).
pub(super) fn bits_for_digits(digits: u32) -> i64 {
    (i64::from(digits) * 3322 + 999) / 1000
}

/// `floor(√q · 2^k) / 2^k` for q > 0, with k chosen for `digits` significant digits.
pub(super) fn root(q: &BigRational, digits: u32) -> Result<Real, Stop> {
    let lb = lower_log2(q).unwrap_or(0);
    // √q > 2^⌊lb/2⌋, so an error below 2^-k is below √q · 10^-digits.
    let k = bits_for_digits(digits) + 2 - lb.div_euclid(2);
    // ⌊√⌊y⌋⌋ = ⌊√y⌋, so the root of the integer part of q·4^k is exact enough.
    let scaled = rational::mul(q, &pow2(2 * k)).floor().to_integer();
    let r = rational::mul(&BigRational::from_integer(scaled.sqrt()), &pow2(-k));
    approximate(r, Some(Bound::pow2(-k)))
}

/// `q^(1/n)` for q ≥ 0: exact when the numerator and denominator are perfect n-th powers,
/// otherwise `floor(q^(1/n) · 2^k) / 2^k` with its error bound, k chosen for `digits`
/// significant digits (as [`sqrt`] does for n = 2).
pub fn nth_root(q: &BigRational, n: u32, digits: u32) -> Result<Real, Stop> {
    if q.is_negative() {
        return Err("a root of a negative number".into());
    }
    let (num, den) = (q.numer().nth_root(n), q.denom().nth_root(n));
    if num.pow(n) == *q.numer() && den.pow(n) == *q.denom() {
        return Ok(Real::exact(BigRational::new(num, den)));
    }
    // The work is one integer root of an n·(bits + 2)-bit number, which cannot be interrupted:
    // bound it (degree 1000 to 28 digits is well inside; to 1000 digits is not).
    let work = u64::from(n) * (bits_for_digits(digits).unsigned_abs() + 2);
    if work > ROOT_WORK_BITS {
        return Err(Stop::Undetermined(format!(
            "a root of degree {n} to {digits} digits needs more work than allowed ({work} > {ROOT_WORK_BITS} bits); \
             lower the precision or the root's degree"
        )));
    }
    let lb = lower_log2(q).unwrap_or(0);
    let k = bits_for_digits(digits) + 2 - lb.div_euclid(i64::from(n));
    // ⌊⌊y⌋^(1/n)⌋ = ⌊y^(1/n)⌋, so the root of the integer part of q·2^(nk) is exact enough.
    let scaled = rational::mul(q, &pow2(i64::from(n) * k)).floor().to_integer();
    let r = rational::mul(&BigRational::from_integer(scaled.nth_root(n)), &pow2(-k));
    approximate(r, Some(Bound::pow2(-k)))
}

/// The square root: exact when both parts of an exact value are perfect squares, otherwise
/// an approximation good to `digits` significant digits, with its error bound.
pub fn sqrt(x: &Real, digits: u32) -> Result<Real, Stop> {
    let Some(e) = x.error else { return exact_sqrt(&x.q, digits) };
    let (_, hi) = bounds(x);
    if hi.is_negative() {
        return Err("square root of a negative number".into());
    }
    if !x.q.is_positive() {
        // The value is in [0, ε], so its root is at most √ε.
        return approximate(BigRational::zero(), Some(e.sqrt()));
    }
    let r = root(&x.q, digits)?;
    // |√x − √q| ≤ min(√|x − q|, |x − q|/√q), and √q > 2^⌊lb/2⌋.
    let lb = lower_log2(&x.q).unwrap_or(0);
    let (near_zero, far) = (e.sqrt(), e.shifted(-lb.div_euclid(2)));
    let spread = if far.log2_above() < near_zero.log2_above() { far } else { near_zero };
    approximate(r.q, sum_bound(&[Some(spread), r.error]))
}

pub(super) fn exact_sqrt(q: &BigRational, digits: u32) -> Result<Real, Stop> {
    if q.is_negative() {
        return Err("square root of a negative number".into());
    }
    let (n, d) = (q.numer(), q.denom());
    let (rn, rd) = (n.sqrt(), d.sqrt());
    if &(&rn * &rn) == n && &(&rd * &rd) == d {
        return Ok(Real::exact(BigRational::new_raw(rn, rd)));
    }
    root(q, digits)
}
