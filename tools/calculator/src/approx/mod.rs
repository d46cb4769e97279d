//! Approximate values: arithmetic with proven error bounds, and the loop that adds guard
//! digits until a result is correctly rounded.
//!
//! Only square roots make a value approximate. Such a value carries a [`Bound`] on its
//! distance from the true value, and every operation bounds its own result's error, so
//! cancellation (`sqrt(10^40+1) - 10^20`) or an integer boundary (`floor(sqrt(2)*sqrt(2))`)
//! is noticed instead of silently giving wrong digits. [`settle`] evaluates with more and
//! more guard digits until the requested rounding is decided.

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};

use crate::arithmetic::Op;
use crate::format::round_digits;
use crate::number::{exponent10, round_half_even, small_integer, Real, MAX_RESULT_BITS};
use crate::rational;

mod roots;
pub use roots::{nth_root, sqrt};

/// Guard digits tried, in order, beyond the requested precision.
pub const GUARD_LEVELS: [u32; 5] = [20, 60, 200, 600, 2000];
/// Most significant digits an evaluation works with (`round(x, 700)` or `floor` of a
/// 500-digit value asks for more than the precision; beyond this it is refused).
pub const MAX_WORKING_DIGITS: u32 = 12_000;
/// Largest root degree of a fractional power (`x^(1/1000)`).
pub const MAX_ROOT_DEGREE: u32 = 1000;
/// Most work one root may take: its degree times the bits of the digits asked for (a root is
/// one uninterruptible integer root of a number this many bits long).
pub const ROOT_WORK_BITS: u64 = 600_000;
/// An error bound above 2^this means the value has lost all its digits.
const MAX_ERROR_LOG2: i64 = MAX_RESULT_BITS as i64;
/// Error bounds are never kept below 2^this (a looser bound is still a bound), which keeps
/// every approximation's denominator bounded.
const MIN_ERROR_LOG2: i64 = -(MAX_RESULT_BITS as i64) - 8192;
/// Bits kept below the error bound when an approximation is shortened.
const SPARE_BITS: i64 = 32;

/// Why an evaluation stopped: the calculator's one error type. Every kind ends as a refusal
/// the model reads (none wraps another library's error: the calculator does no IO).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// The input is wrong (division by zero, syntax, size): tell the caller.
    #[error("{0}")]
    Refused(String),
    /// The working precision could not decide something: retry with more guard digits.
    #[error("the result could not be determined: {0}")]
    Undetermined(String),
    /// Deciding needs at least this many significant digits (before guard digits).
    #[error("the result needs {0} significant digits to be determined")]
    MoreDigits(u32),
}

/// What the tool answers: the refusal's words, for the model to act on.
impl From<Stop> for tool_kit::ToolError {
    fn from(stop: Stop) -> Self {
        tool_kit::ToolError::Invalid(stop.to_string())
    }
}

impl From<String> for Stop {
    fn from(message: String) -> Self {
        Self::Refused(message)
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Self {
        Self::Refused(message.to_owned())
    }
}

/// Evaluate `f(digits)` with `precision` plus each of [`GUARD_LEVELS`] digits until the result
/// is exact or its rounding to `precision` digits is decided. When `f` says it needs more
/// significant digits than it was given (`round(sqrt(2), 700)`), the same level is tried again
/// on that many. Nothing is ever guessed: what the last level cannot decide is refused. Stops
/// between levels when the call has been given up.
pub fn settle(precision: u32, mut f: impl FnMut(u32) -> Result<Real, Stop>) -> Result<Real, Stop> {
    let mut why = String::new();
    let mut base = precision;
    let mut level = 0;
    while let Some(guard) = GUARD_LEVELS.get(level) {
        if tool_kit::cancel::requested() {
            return Err("the call was given up".into());
        }
        match f(base + guard) {
            Ok(x) if x.is_exact() || decided(&x, precision) => return Ok(x),
            Ok(_) => {
                why = format!(
                    "it lies too close to a rounding boundary; if it is exactly 0 or exactly halfway between two \
                     {precision}-digit decimals, simplify the expression (sqrt(x)^2 is x) or change the precision"
                )
            }
            Err(Stop::Refused(message)) => return Err(Stop::Refused(message)),
            Err(Stop::Undetermined(reason)) => why = reason,
            Err(Stop::MoreDigits(n)) if n > base && n <= MAX_WORKING_DIGITS => {
                base = n;
                continue;
            }
            Err(Stop::MoreDigits(n)) if n > base => {
                return Err(format!(
                    "the result needs {n} significant digits to be determined, more than the {MAX_WORKING_DIGITS} \
                     this tool works with"
                )
                .into())
            }
            Err(Stop::MoreDigits(_)) => why = "more digits did not help".into(),
        }
        level += 1;
    }
    let most = GUARD_LEVELS[GUARD_LEVELS.len() - 1];
    Err(format!(
        "the result could not be determined to {precision} significant digits even with {most} extra digits: {why}"
    )
    .into())
}

/// True when every value within the error bound of `x` rounds to the same decimal.
fn decided(x: &Real, precision: u32) -> bool {
    let (lo, hi) = bounds(x);
    !lo.is_zero() && !hi.is_zero() && round_digits(&lo, precision) == round_digits(&hi, precision)
}

/// 2^k as a rational.
fn pow2(k: i64) -> BigRational {
    let p = BigInt::from(1) << k.unsigned_abs();
    if k >= 0 {
        BigRational::from_integer(p)
    } else {
        BigRational::new_raw(BigInt::from(1), p)
    }
}

/// An upper bound `m · 2^e` on an approximation's error: a tiny float that only ever rounds
/// up, so that adding n equal errors costs log2(n) bits rather than n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    m: u64,
    e: i64,
}

impl Bound {
    /// Bits kept in the mantissa.
    const BITS: u32 = 32;

    /// 2^k.
    pub fn pow2(k: i64) -> Self {
        Self { m: 1, e: k }
    }

    /// m · 2^e rounded up to [`Self::BITS`] bits of mantissa.
    fn rounded_up(m: u128, e: i64) -> Self {
        let excess = (u128::BITS - m.leading_zeros()).saturating_sub(Self::BITS);
        let carry = u128::from(m & ((1u128 << excess) - 1) != 0);
        let m = ((m >> excess) + carry).max(1);
        Self { m: u64::try_from(m).unwrap_or(u64::MAX), e: e.saturating_add(i64::from(excess)) }
    }

    /// A k with self < 2^k.
    pub fn log2_above(self) -> i64 {
        self.e.saturating_add(i64::from(u64::BITS - self.m.leading_zeros()))
    }

    /// A k with self ≥ 2^k.
    fn log2_below(self) -> i64 {
        self.log2_above() - 1
    }

    fn plus(self, other: Self) -> Self {
        let (big, small) = if self.e >= other.e { (self, other) } else { (other, self) };
        let shift = big.e.saturating_sub(small.e);
        // ⌈small.m / 2^shift⌉, at least 1 since small.m ≥ 1.
        let part = if shift >= 64 { 1 } else { (small.m >> shift) + u64::from(small.m & ((1 << shift) - 1) != 0) };
        Self::rounded_up(u128::from(big.m) + u128::from(part), big.e)
    }

    fn times(self, other: Self) -> Self {
        Self::rounded_up(u128::from(self.m) * u128::from(other.m), self.e.saturating_add(other.e))
    }

    /// The larger of two bounds (by their logarithms: either is a valid bound).
    fn max_with(self, other: Self) -> Self {
        if self.log2_above() >= other.log2_above() {
            self
        } else {
            other
        }
    }

    fn shifted(self, k: i64) -> Self {
        Self { m: self.m, e: self.e.saturating_add(k) }
    }

    /// A bound on √self.
    fn sqrt(self) -> Self {
        let (m, e) = if self.e % 2 == 0 { (self.m, self.e) } else { (self.m << 1, self.e - 1) };
        let r = m.isqrt();
        Self { m: if r * r < m { r + 1 } else { r }, e: e / 2 }
    }

    /// ⌈self⌉ as an integer, saturating.
    fn ceil_u128(self) -> u128 {
        let m = u128::from(self.m);
        match self.e {
            e if (0..64).contains(&e) => m << e,
            e if e >= 0 => u128::MAX,
            e if e > -128 => {
                let shift = e.unsigned_abs() as u32;
                (m >> shift) + u128::from(m & ((1u128 << shift) - 1) != 0)
            }
            _ => 1,
        }
    }

    fn to_rational(self) -> BigRational {
        rational::mul(&BigRational::from_integer(BigInt::from(self.m)), &pow2(self.e))
    }
}

/// The interval `[q − ε, q + ε]` holding the value.
pub fn bounds(x: &Real) -> (BigRational, BigRational) {
    match x.error {
        None => (x.q.clone(), x.q.clone()),
        Some(bound) => {
            let r = bound.to_rational();
            (rational::sub(&x.q, &r), rational::add(&x.q, &r))
        }
    }
}

/// A k with |q| < 2^k (`None` for zero).
fn upper_log2(q: &BigRational) -> Option<i64> {
    (!q.is_zero()).then(|| q.numer().bits() as i64 - q.denom().bits() as i64 + 1)
}

/// A k with |q| > 2^k (`None` for zero).
fn lower_log2(q: &BigRational) -> Option<i64> {
    (!q.is_zero()).then(|| q.numer().bits() as i64 - q.denom().bits() as i64 - 1)
}

/// |q| scaled by 2^s so that it has about 34 bits before the point: (⌊|q|·2^s⌋, ⌈|q|·2^s⌉, s).
fn scaled_magnitude(q: &BigRational) -> (BigInt, BigInt, i64) {
    let (n, d) = (q.numer().abs(), q.denom().clone());
    let s = 34 - (n.bits() as i64 - d.bits() as i64);
    let (num, den) = if s >= 0 { (n << s.unsigned_abs(), d) } else { (n, d << s.unsigned_abs()) };
    let (floor, rem) = num.div_rem(&den);
    let ceil = if rem.is_zero() { floor.clone() } else { &floor + 1 };
    (floor, ceil, s)
}

/// A bound on |q| within 2^-31 of it (`None` for zero).
fn magnitude(q: &BigRational) -> Option<Bound> {
    if q.is_zero() {
        return None;
    }
    let (_, ceil, s) = scaled_magnitude(q);
    Some(Bound::rounded_up(ceil.to_u128().unwrap_or(u128::MAX), -s))
}

/// A bound on 1/|v| for every v within `error` of `q`, or `None` when such a v may be 0.
fn reciprocal(q: &BigRational, error: Option<Bound>) -> Option<Bound> {
    if q.is_zero() {
        return None;
    }
    // |v| ≥ (⌊|q|·2^s⌋ − ⌈ε·2^s⌉) / 2^s, both integers of about 34 bits.
    let (floor, _, s) = scaled_magnitude(q);
    let low = floor.to_u128().unwrap_or(0);
    let slack = error.map_or(0, |e| e.shifted(s).ceil_u128());
    let gap = low.checked_sub(slack).filter(|g| *g > 0)?;
    // 1/|v| ≤ 2^s / gap ≤ ⌈2^96 / gap⌉ · 2^(s − 96).
    Some(Bound::rounded_up((1u128 << 96).div_ceil(gap), s - 96))
}

/// The bound on a product; `None` (a zero factor) wins.
fn times(a: Option<Bound>, b: Option<Bound>) -> Option<Bound> {
    Some(a?.times(b?))
}

/// The bound on a sum of the terms present (`None` when there are none: the sum is 0).
fn sum_bound(terms: &[Option<Bound>]) -> Option<Bound> {
    terms.iter().flatten().copied().reduce(Bound::plus)
}

/// `num/den` (den > 0) rounded down to a multiple of 2^grid, with one integer division.
fn to_grid(num: BigInt, den: BigInt, grid: i64) -> BigRational {
    let shift = grid.unsigned_abs();
    let steps = if grid <= 0 { (num << shift).div_floor(&den) } else { num.div_floor(&(den << shift)) };
    if steps.is_zero() {
        return BigRational::zero();
    }
    // steps·2^grid in lowest terms: the powers of two cancel.
    let twos = steps.trailing_zeros().unwrap_or(0).min(if grid < 0 { shift } else { 0 });
    let steps = steps >> twos;
    let k = grid + twos as i64;
    if k >= 0 {
        BigRational::from_integer(steps << k.unsigned_abs())
    } else {
        BigRational::new_raw(steps, BigInt::from(1) << k.unsigned_abs())
    }
}

/// The grid an approximation with error bound `error` is rounded to.
fn grid_for(error: Bound) -> i64 {
    error.log2_below() - SPARE_BITS
}

/// The approximation `q` with error bound `error` (`None`: exact), shortened when its
/// fraction is much longer than the bound warrants.
fn approximate(q: BigRational, error: Option<Bound>) -> Result<Real, Stop> {
    let Some(error) = error else { return Ok(Real::exact(q)) };
    let size = |k: i64| !(-MAX_ERROR_LOG2..=MAX_ERROR_LOG2).contains(&k);
    if upper_log2(&q).is_some_and(size) {
        return Err(format!("the result exceeds the size limit of {MAX_RESULT_BITS} bits").into());
    }
    if error.log2_above() > MAX_ERROR_LOG2 {
        return Err(Stop::Undetermined("an intermediate result lost all its significant digits".into()));
    }
    let error = if error.log2_above() < MIN_ERROR_LOG2 { Bound::pow2(MIN_ERROR_LOG2) } else { error };
    let grid = grid_for(error);
    if q.denom().bits() as i64 > (-grid).max(0) + 2 * SPARE_BITS {
        // Rounding moves q by less than 2^grid.
        let q = to_grid(q.numer().clone(), q.denom().clone(), grid);
        return Ok(Real { q, error: Some(error.plus(Bound::pow2(grid))) });
    }
    Ok(Real { q, error: Some(error) })
}

/// Apply `op` when at least one operand is approximate, roots and integer parts worked out to
/// `digits` significant digits.
pub fn apply(op: Op, a: &Real, b: &Real, digits: u32) -> Result<Real, Stop> {
    match op {
        Op::Add => approximate(rational::add(&a.q, &b.q), sum_bound(&[a.error, b.error])),
        Op::Sub => approximate(rational::sub(&a.q, &b.q), sum_bound(&[a.error, b.error])),
        Op::Mul => mul(a, b),
        Op::Div => div(a, b),
        Op::Pow => pow(a, b),
        Op::Mod if b.is_exact() && b.q.is_zero() => Err("modulo by zero".into()),
        Op::Mod => {
            let k = to_integer(Rounding::Floor, &div(a, b)?, digits)?;
            apply(Op::Sub, a, &mul(b, &k)?, digits)
        }
    }
}

/// (a' + α)(b' + β) − a'b' = a'β + b'α + αβ.
fn mul(a: &Real, b: &Real) -> Result<Real, Stop> {
    let error = sum_bound(&[times(magnitude(&a.q), b.error), times(magnitude(&b.q), a.error), times(a.error, b.error)]);
    approximate(rational::mul(&a.q, &b.q), error)
}

/// |a/b − a'/b'| = |αb' − a'β| / (|b||b'|) ≤ |α|/|b| + |a'||β|/(|b||b'|).
fn div(a: &Real, b: &Real) -> Result<Real, Stop> {
    if b.is_exact() && b.q.is_zero() {
        return Err("division by zero".into());
    }
    let undetermined = || Stop::Undetermined("a divisor could not be told apart from zero".into());
    let inverse = reciprocal(&b.q, b.error).ok_or_else(undetermined)?;
    let error = sum_bound(&[
        times(a.error, Some(inverse)),
        times(times(magnitude(&a.q), b.error), times(Some(inverse), reciprocal(&b.q, None))),
    ]);
    let Some(error) = error else { return Ok(Real::exact(BigRational::zero())) };
    // The quotient goes straight to its grid (no exact reduction of a value about to be rounded).
    let grid = grid_for(error.max_with(Bound::pow2(MIN_ERROR_LOG2)));
    let sign = if b.q.is_negative() { -1 } else { 1 };
    let q = to_grid(a.q.numer() * b.q.denom() * sign, a.q.denom() * b.q.numer().abs(), grid);
    approximate(q, Some(error.plus(Bound::pow2(grid))))
}

/// Square and multiply, each step bounded and shortened by [`mul`]; a negative power is the
/// reciprocal.
fn pow(a: &Real, b: &Real) -> Result<Real, Stop> {
    if !b.is_exact() {
        return Err("pow needs an exact integer exponent".into());
    }
    let n = small_integer(&b.q, "the exponent of pow")?;
    let (mut result, mut base, mut m) = (Real::int(1), a.clone(), n.unsigned_abs());
    while m > 0 {
        if tool_kit::cancel::requested() {
            return Err("the call was given up".into());
        }
        if m & 1 == 1 {
            result = mul(&result, &base)?;
        }
        m >>= 1;
        if m > 0 {
            base = mul(&base, &base)?;
        }
    }
    if n >= 0 {
        Ok(result)
    } else {
        div(&Real::int(1), &result)
    }
}

/// How `floor`, `ceil` and `round` map a value to an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards −∞.
    Floor,
    /// Towards +∞.
    Ceil,
    /// To the nearest, ties to even (Python's `round`).
    HalfEven,
}

impl Rounding {
    fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Ceil => "ceil",
            Self::HalfEven => "round",
        }
    }

    fn of(self, q: &BigRational) -> BigInt {
        match self {
            Self::Floor => q.floor().to_integer(),
            Self::Ceil => q.ceil().to_integer(),
            Self::HalfEven => round_half_even(q),
        }
    }
}

/// `floor`, `ceil` or `round` of `x`: exact once the whole interval maps to one integer. When
/// it straddles a boundary the value is never guessed: more significant digits are asked for
/// when the integer part alone needs them, else the next guard level; what the last level
/// cannot place is refused (`floor(sqrt(2)*sqrt(2))` cannot be told from just below 2).
pub fn to_integer(rounding: Rounding, x: &Real, digits: u32) -> Result<Real, Stop> {
    let (lo, hi) = bounds(x);
    let (low, high) = (rounding.of(&lo), rounding.of(&hi));
    if low == high {
        return Ok(Real::exact(BigRational::from_integer(low)));
    }
    if !x.q.is_zero() {
        // An integer part of e + 1 digits needs more than e + 1 significant digits.
        let needed = exponent10(&x.q) + 4;
        if needed > i64::from(digits) {
            return Err(Stop::MoreDigits(u32::try_from(needed).unwrap_or(u32::MAX)));
        }
    }
    let error = x.error.map_or(0, |e| e.log2_above());
    Err(Stop::Undetermined(format!(
        "the argument of {} is within 2^{error} of an integer and could not be placed between two integers; if it \
         is exactly an integer (sqrt(2)*sqrt(2) is 2), simplify the expression",
        rounding.name()
    )))
}

/// `min` (or `max`) of the values: the chosen value keeps its own error bound when its
/// interval is clear of all others, else it gets one covering every value's error.
pub fn extreme(values: Vec<Real>, max: bool) -> Option<Real> {
    let better = |a: &Real, b: &Real| if max { a.q > b.q } else { a.q < b.q };
    let best = values.iter().fold(None::<&Real>, |best, x| match best {
        Some(b) if !better(x, b) => Some(b),
        _ => Some(x),
    })?;
    let (lo, hi) = bounds(best);
    let overlaps = values.iter().filter(|x| !std::ptr::eq(*x, best)).any(|x| {
        let (xlo, xhi) = bounds(x);
        if max {
            xhi >= lo
        } else {
            xlo <= hi
        }
    });
    // |max(x) − max(x')| ≤ max |x − x'|, which the sum of the bounds covers.
    let error = if overlaps { sum_bound(&values.iter().map(|x| x.error).collect::<Vec<_>>()) } else { best.error };
    Some(Real { q: best.q.clone(), error })
}

#[cfg(test)]
mod tests;
