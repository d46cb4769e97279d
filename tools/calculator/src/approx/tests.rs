use super::*;
use crate::format::decimal;
use crate::number::parse_str;

fn q(s: &str) -> BigRational {
    parse_str(s).unwrap()
}

fn contains(x: &Real, truth: &str) -> bool {
    let (lo, hi) = bounds(x);
    lo <= q(truth) && q(truth) <= hi
}

#[test]
fn square_roots_are_exact_or_bounded() {
    assert_eq!(sqrt(&Real::exact(q("9/16")), 28).unwrap(), Real::exact(q("3/4")));
    assert_eq!(sqrt(&Real::int(0), 28).unwrap(), Real::int(0));
    let r2 = sqrt(&Real::int(2), 30).unwrap();
    assert!(!r2.is_exact());
    // √2 = 1.41421356237309504880168872420969807856967187537694…
    assert!(contains(&r2, "1.414213562373095048801688724209698078569"));
    assert!(!contains(&r2, "1.4142135623730950488016887242"));
    assert_eq!(decimal(&r2, 28).text, "1.414213562373095048801688724");
    assert!(sqrt(&Real::int(-1), 10).is_err());
    let big = sqrt(&Real::exact(q("1e41")), 30).unwrap(); // 3.16227766016837933199889354443271853372e20
    assert!(contains(&big, "316227766016837933199.889354443271853371955513932521682685750485279259443863923822134"));
}

#[test]
fn error_bounds_cover_the_true_value_after_every_operation() {
    let (r2, r3) = (sqrt(&Real::int(2), 40).unwrap(), sqrt(&Real::int(3), 40).unwrap());
    let six = apply(Op::Mul, &r2, &r3, 40).unwrap();
    assert!(contains(&apply(Op::Sub, &six, &sqrt(&Real::int(6), 40).unwrap(), 40).unwrap(), "0"));
    assert!(contains(&apply(Op::Mul, &r2, &r2, 40).unwrap(), "2"));
    assert!(contains(&apply(Op::Div, &r2, &r2, 40).unwrap(), "1"));
    assert!(contains(&apply(Op::Pow, &r2, &Real::int(-4), 40).unwrap(), "0.25"));
    assert!(contains(
        &apply(Op::Pow, &r2, &Real::int(9), 40).unwrap(),
        "22.6274169979695207808270195873551692571147500060311691708269"
    ));
    assert!(contains(
        &apply(Op::Mod, &r3, &Real::int(1), 40).unwrap(),
        "0.732050807568877293527446341505872366942805253810380628055807"
    ));
    let zero = apply(Op::Sub, &r2, &r2, 40).unwrap();
    assert!(matches!(apply(Op::Div, &Real::int(1), &zero, 40), Err(Stop::Undetermined(_))));
    assert_eq!(apply(Op::Mul, &Real::int(0), &r2, 40).unwrap(), Real::int(0));
}

#[test]
fn integer_boundaries_are_never_guessed() {
    let two = apply(Op::Mul, &sqrt(&Real::int(2), 40).unwrap(), &sqrt(&Real::int(2), 40).unwrap(), 40).unwrap();
    for rounding in [Rounding::Floor, Rounding::Ceil] {
        assert!(matches!(to_integer(rounding, &two, 40), Err(Stop::Undetermined(_))));
    }
    // Round's boundaries are at halves: every value near 2 rounds to 2, which is proven.
    assert_eq!(to_integer(Rounding::HalfEven, &two, 40).unwrap(), Real::int(2));
    // Proven results are exact: floor(√2) = 1.
    assert_eq!(to_integer(Rounding::Floor, &sqrt(&Real::int(2), 40).unwrap(), 40).unwrap(), Real::int(1));
    // An integer part longer than the digits computed asks for more digits.
    let big = apply(Op::Mul, &sqrt(&Real::int(2), 40).unwrap(), &Real::exact(q("1e100")), 40).unwrap();
    assert_eq!(to_integer(Rounding::Floor, &big, 40), Err(Stop::MoreDigits(104)));
}

#[test]
fn roots_of_any_degree_are_exact_or_bounded() {
    assert_eq!(nth_root(&q("8"), 3, 28).unwrap(), Real::int(2));
    assert_eq!(nth_root(&q("16/81"), 4, 28).unwrap(), Real::exact(q("2/3")));
    let r = nth_root(&q("2"), 3, 30).unwrap(); // ∛2 = 1.2599210498948731647672106072782283505702514647015…
    assert!(!r.is_exact() && contains(&r, "1.259921049894873164767210607278228350570"));
    assert!(!contains(&r, "1.2599210498948731647672106073"));
    assert!(nth_root(&q("-8"), 3, 28).is_err());
    // Too much work for one uninterruptible root: refused before starting, at once.
    let started = std::time::Instant::now();
    assert!(matches!(nth_root(&q("3"), 1000, 1000), Err(Stop::Undetermined(_))));
    assert!(matches!(nth_root(&pow2(-99_990), 1000, 2000), Err(Stop::Undetermined(_))));
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
}

#[test]
fn extremes_keep_exactness_when_intervals_are_apart() {
    let r2 = sqrt(&Real::int(2), 40).unwrap();
    assert_eq!(extreme(vec![Real::int(1), r2.clone()], false).unwrap(), Real::int(1));
    let m = extreme(vec![Real::int(1), r2.clone()], true).unwrap();
    assert_eq!(m, r2);
    assert!(extreme(vec![], true).is_none());
}

#[test]
fn settle_retries_until_the_rounding_is_decided() {
    let mut levels = vec![];
    let r = settle(5, |digits| {
        levels.push(digits);
        if digits < 100 {
            Err(Stop::Undetermined("not yet".into()))
        } else {
            sqrt(&Real::int(2), digits)
        }
    })
    .unwrap();
    assert_eq!((levels, decimal(&r, 5).text), (vec![25, 65, 205], "1.4142".to_owned()));
    let err = settle(5, |_| Err(Stop::Undetermined("never".into()))).unwrap_err().to_string();
    assert!(
        err.contains("could not be determined to 5 significant digits even with 2000 extra digits: never"),
        "{err}"
    );
    // Asked for more digits, the same level runs again on them.
    let mut asked = vec![];
    let r = settle(5, |digits| {
        asked.push(digits);
        if digits < 700 {
            Err(Stop::MoreDigits(700))
        } else {
            sqrt(&Real::int(2), digits)
        }
    })
    .unwrap();
    assert_eq!((asked, decimal(&r, 5).text), (vec![25, 720], "1.4142".to_owned()));
    // A call given up (past its time limit) stops before its next level.
    let (watch, give_up) = tool_kit::cancel::Watch::new();
    drop(give_up);
    let err = watch.run(|| settle(5, |_| Err(Stop::Undetermined("never".into())))).unwrap_err().to_string();
    assert_eq!(err, "the call was given up");
    assert_eq!(settle(5, |_| Err(Stop::Refused("bad".into()))).unwrap_err().to_string(), "bad");
}
