//! Descriptive statistics over exact rationals (as Python's `statistics` on `Fraction`s);
//! `stdev` is the correctly rounded square root of the exact variance.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use crate::number::{self, check_size, Real};

/// Most values accepted in one call.
pub const MAX_VALUES: usize = 100_000;

fn ratio(n: usize) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

fn mean(xs: &[BigRational]) -> BigRational {
    xs.iter().fold(BigRational::zero(), |acc, x| acc + x) / ratio(xs.len())
}

fn variance(xs: &[BigRational], sample: bool) -> Result<BigRational, String> {
    let n = xs.len();
    if sample && n < 2 {
        return Err("sample variance needs at least two values (or pass \"sample\": false)".into());
    }
    let m = mean(xs);
    let ss = xs.iter().fold(BigRational::zero(), |acc, x| {
        let d = x - &m;
        acc + &d * &d
    });
    Ok(ss / ratio(if sample { n - 1 } else { n }))
}

fn sorted(xs: &[BigRational]) -> Vec<BigRational> {
    let mut v = xs.to_vec();
    v.sort();
    v
}

/// Linear interpolation between order statistics (numpy's default; Python's
/// `statistics.quantiles(method="inclusive")` cut points): position (n − 1)·q.
fn quantile(xs: &[BigRational], q: &BigRational) -> Result<BigRational, String> {
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
) -> Result<Real, String> {
    if values.is_empty() && function != "count" {
        return Err(format!("{function} needs at least one value"));
    }
    if values.len() > MAX_VALUES {
        return Err(format!("too many values: at most {MAX_VALUES}"));
    }
    let exact = |q: BigRational| -> Result<Real, String> {
        check_size(&q)?;
        Ok(Real::exact(q))
    };
    match function {
        "count" => Ok(Real::int(values.len() as i64)),
        "sum" => exact(values.iter().fold(BigRational::zero(), |acc, x| acc + x)),
        "mean" => exact(mean(values)),
        "min" => exact(values.iter().min().cloned().unwrap_or_default()),
        "max" => exact(values.iter().max().cloned().unwrap_or_default()),
        "median" => {
            let v = sorted(values);
            let mid = v.len() / 2;
            exact(if v.len() % 2 == 1 { v[mid].clone() } else { (&v[mid - 1] + &v[mid]) / ratio(2) })
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
        "stdev" => number::sqrt(&Real::exact(variance(values, sample)?), precision),
        "quantile" => {
            let q = q.ok_or("quantile needs \"q\" (between 0 and 1)")?;
            exact(quantile(values, q)?)
        }
        other => Err(format!(
            "unknown statistics function {other:?}: use mean, median, mode, variance, stdev, min, max, sum, count or quantile"
        )),
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
        if r.inexact {
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
}
