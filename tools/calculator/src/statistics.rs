//! Descriptive statistics over exact rationals (as Python's `statistics` on `Fraction`s);
//! `stdev` is the correctly rounded square root of the exact variance.
//!
//! Sums go through [`rational::sum`], which refuses values whose common denominator could
//! outgrow the size limit before computing anything (`"1/1"` … `"1/100000"`).

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use crate::approx;
use crate::approx::Stop;
use crate::number::{check_size, Real};
use crate::rational;

/// Most values accepted in one call.
pub const MAX_VALUES: usize = 100_000;

fn ratio(n: usize) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

fn mean(xs: &[BigRational]) -> Result<BigRational, Stop> {
    Ok(rational::div(&rational::sum(xs)?, &ratio(xs.len())).unwrap_or_default())
}

/// Σ(x − mean)² / (n − 1 or n), computed as (Σx² − (Σx)²/n) / (n − 1 or n): every term
/// keeps its own small denominator, so the sums stay cheap.
fn variance(xs: &[BigRational], sample: bool) -> Result<BigRational, Stop> {
    let n = xs.len();
    if sample && n < 2 {
        return Err("sample variance needs at least two values (or pass \"sample\": false)".into());
    }
    let squares: Vec<BigRational> = xs.iter().map(rational::square).collect();
    let total = rational::sum(xs)?;
    let spread = rational::sub(
        &rational::sum(&squares)?,
        &rational::div(&rational::square(&total), &ratio(n)).unwrap_or_default(),
    );
    Ok(rational::div(&spread, &ratio(if sample { n - 1 } else { n })).unwrap_or_default())
}

fn sorted(xs: &[BigRational]) -> Vec<BigRational> {
    let mut v = xs.to_vec();
    v.sort();
    v
}

/// Linear interpolation between order statistics (numpy's default; Python's
/// `statistics.quantiles(method="inclusive")` cut points): position (n − 1)·q.
fn quantile(xs: &[BigRational], q: &BigRational) -> Result<BigRational, Stop> {
    if *q < BigRational::zero() || *q > BigRational::from_integer(1.into()) {
        return Err("q must be between 0 and 1".into());
    }
    let v = sorted(xs);
    let h = ratio(v.len() - 1) * q;
    let lo = h.floor().to_integer().to_usize().unwrap_or(0);
    let frac = &h - BigRational::from_integer(BigInt::from(lo));
    Ok(match v.get(lo + 1) {
        Some(next) => &v[lo] + frac * (next - &v[lo]),
        None => v[lo].clone(),
    })
}

/// Compute `function` over `values`.
pub fn compute(
    function: &str,
    values: &[BigRational],
    sample: bool,
    q: Option<&BigRational>,
    precision: u32,
) -> Result<Real, Stop> {
    if values.is_empty() && function != "count" {
        return Err(format!("{function} needs at least one value").into());
    }
    if values.len() > MAX_VALUES {
        return Err(format!("too many values: at most {MAX_VALUES}").into());
    }
    let exact = |q: BigRational| -> Result<Real, Stop> {
        check_size(&q)?;
        Ok(Real::exact(q))
    };
    match function {
        "count" => Ok(Real::int(values.len() as i64)),
        "sum" => exact(rational::sum(values)?),
        "mean" => exact(mean(values)?),
        "min" => exact(values.iter().min().cloned().unwrap_or_default()),
        "max" => exact(values.iter().max().cloned().unwrap_or_default()),
        "median" => {
            let v = sorted(values);
            let mid = v.len() / 2;
            exact(if v.len() % 2 == 1 {
                v[mid].clone()
            } else {
                rational::div(&rational::add(&v[mid - 1], &v[mid]), &ratio(2)).unwrap_or_default()
            })
        }
        "mode" => {
            // The first value among the most common, in input order (Python's `mode`).
            let mut best: Option<(&BigRational, usize)> = None;
            let mut counts: std::collections::HashMap<&BigRational, usize> = std::collections::HashMap::new();
            for x in values {
                *counts.entry(x).or_default() += 1;
            }
            for x in values {
                let c = counts[x];
                if best.is_none_or(|(_, bc)| c > bc) {
                    best = Some((x, c));
                }
            }
            exact(best.map(|(x, _)| x.clone()).unwrap_or_default())
        }
        "variance" => exact(variance(values, sample)?),
        "stdev" => {
            let v = Real::exact(variance(values, sample)?);
            approx::settle(precision, |digits| approx::sqrt(&v, digits))
        }
        "quantile" => {
            let q = q.ok_or("quantile needs \"q\" (between 0 and 1)")?;
            exact(quantile(values, q)?)
        }
        other => Err(format!(
            "unknown statistics function {other:?}: use mean, median, mode, variance, stdev, min, max, sum, count or quantile"
        ).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{decimal, fraction};
    use crate::number::parse_str;

    fn vals(xs: &[&str]) -> Vec<BigRational> {
        xs.iter().map(|s| parse_str(s).unwrap()).collect()
    }

    fn f(function: &str, xs: &[&str], sample: bool) -> String {
        let r = compute(function, &vals(xs), sample, Some(&parse_str("0.25").unwrap()), 28).unwrap();
        if !r.is_exact() {
            decimal(&r, 28).text
        } else {
            fraction(&r.q)
        }
    }

    #[test]
    fn statistics_agree_with_python() {
        let data = ["2.5", "3.25", "5.5", "11.25", "11.75"];
        assert_eq!(f("mean", &data, true), "137/20"); // 6.85
        assert_eq!(f("median", &["1", "3", "5", "7"], true), "4");
        assert_eq!(f("median", &data, true), "11/2");
        assert_eq!(f("mode", &["1", "2", "2", "3", "3"], true), "2");
        assert_eq!(f("variance", &["1", "2", "3", "4"], true), "5/3");
        assert_eq!(f("variance", &["1", "2", "3", "4"], false), "5/4");
        // statistics.stdev([Decimal(x) for x in (1,2,3,4)]) with prec 28
        assert_eq!(f("stdev", &["1", "2", "3", "4"], true), "1.290994448735805628393088467");
        assert_eq!(f("stdev", &["2", "4", "4", "4", "5", "5", "7", "9"], false), "2");
        assert_eq!(f("quantile", &["1", "2", "3", "4", "5"], true), "2");
        assert_eq!(f("quantile", &["1", "2", "3", "4"], true), "7/4");
        assert_eq!(f("sum", &["0.1", "0.2"], true), "3/10");
        assert_eq!(f("count", &[], true), "0");
    }

    #[test]
    fn bad_statistics_input_is_an_error() {
        assert!(compute("mean", &[], true, None, 28).is_err());
        assert!(compute("variance", &vals(&["1"]), true, None, 28).is_err());
        assert!(compute("quantile", &vals(&["1"]), true, None, 28).is_err());
        assert!(compute("quantile", &vals(&["1"]), true, Some(&parse_str("2").unwrap()), 28).is_err());
        assert!(compute("kurtosis", &vals(&["1"]), true, None, 28).is_err());
    }

    #[test]
    fn oversized_common_denominators_are_refused_before_computing() {
        let harmonic: Vec<String> = (1..=100_000).map(|k| format!("1/{k}")).collect();
        let values = vals(&harmonic.iter().map(String::as_str).collect::<Vec<_>>());
        for function in ["sum", "mean", "variance", "stdev"] {
            let started = std::time::Instant::now();
            let err = compute(function, &values, true, None, 28).unwrap_err().to_string();
            assert!(err.contains("distinct denominators") && err.contains("size limit"), "{function}: {err}");
            // A sanity bound only (debug build, busy machine): the refusal comes before any sum.
            assert!(started.elapsed() < std::time::Duration::from_secs(2), "{function}: {:?}", started.elapsed());
        }
        // Order statistics need no common denominator and still answer.
        assert_eq!(fraction(&compute("max", &values, true, None, 28).unwrap().q), "1");
        assert_eq!(fraction(&compute("median", &values, true, None, 28).unwrap().q), "100001/5000100000");
    }
}
