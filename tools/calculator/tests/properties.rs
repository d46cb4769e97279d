//! Properties that must hold for any input, checked on generated values.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use calculator::arithmetic::{apply, Op};
use calculator::number::{parse_str, Real};
use calculator::units;
use num_traits::{Signed, Zero};
use proptest::prelude::*;

fn rational() -> impl Strategy<Value = Real> {
    (-1_000_000_000i64..1_000_000_000, 1i64..1_000_000)
        .prop_map(|(n, d)| Real::exact(parse_str(&format!("{n}/{d}")).unwrap()))
}

proptest! {
    #[test]
    fn adding_then_subtracting_gives_back_the_value(a in rational(), b in rational()) {
        let sum = apply(Op::Add, &a, &b, 28).unwrap();
        prop_assert_eq!(apply(Op::Sub, &sum, &b, 28).unwrap(), a);
    }

    #[test]
    fn dividing_then_multiplying_gives_back_the_value(a in rational(), b in rational()) {
        prop_assume!(!b.q.is_zero());
        let q = apply(Op::Div, &a, &b, 28).unwrap();
        prop_assert_eq!(apply(Op::Mul, &q, &b, 28).unwrap(), a);
    }

    #[test]
    fn modulo_has_the_divisors_sign_and_reconstructs(a in rational(), b in rational()) {
        prop_assume!(!b.q.is_zero());
        let r = apply(Op::Mod, &a, &b, 28).unwrap();
        prop_assert!(r.q.abs() < b.q.abs());
        prop_assert!(r.q.is_zero() || r.q.is_positive() == b.q.is_positive());
        let k = ((&a.q - &r.q) / &b.q).clone();
        prop_assert!(k.is_integer());
    }

    #[test]
    fn unit_conversions_round_trip_exactly(v in rational(), pair in prop::sample::select(vec![
        ("°C", "°F"), ("K", "degF"), ("mi", "km"), ("km/h", "mph"), ("kWh", "BTU"), ("psi", "bar"),
        ("GiB", "MB"), ("acre", "ft^2"), ("gal", "L"), ("lb", "kg"), ("atm", "mmHg"), ("kn", "m/s"),
    ])) {
        let (from, to) = (units::parse(pair.0).unwrap(), units::parse(pair.1).unwrap());
        let there = units::convert(&v.q, &from, &to).unwrap();
        prop_assert_eq!(units::convert(&there, &to, &from).unwrap(), v.q);
    }

    #[test]
    fn any_expression_text_gives_a_result_or_an_error_never_a_panic(src in "[-+*/^%()0-9., a-z]{0,60}") {
        let _ = calculator::expression::evaluate(&src, 28);
    }

    #[test]
    fn any_expression_with_functions_gives_a_result_or_an_error_never_a_panic(
        src in "(sqrt\\(|floor\\(|ceil\\(|round\\(|min\\(|max\\(|abs\\(|[-+*/^%(),. 0-9]){0,40}",
        p in 1u32..60,
    ) {
        let _ = calculator::expression::evaluate(&src, p);
    }

    #[test]
    fn a_squared_square_root_rounds_like_the_exact_value(n in 1i64..1_000_000, d in 1i64..1000, p in 1u32..60) {
        let x = parse_str(&format!("{n}/{d}")).unwrap();
        let want = calculator::format::decimal(&Real::exact(x), p).text;
        let got = calculator::expression::evaluate(&format!("sqrt({n}/{d}) * sqrt({n}/{d})"), p);
        // A value exactly halfway between two p-digit decimals cannot be settled from
        // approximations; everything else must come out exactly as the exact value rounds.
        match got {
            Ok(v) => prop_assert_eq!(parse_str(&calculator::format::decimal(&v, p).text).unwrap(), parse_str(&want).unwrap()),
            Err(e) => prop_assert!(e.to_string().contains("exactly halfway"), "{}", e),
        }
    }

    #[test]
    fn floors_of_square_roots_are_exact_integer_roots(n in 0u64..u64::MAX) {
        let v = calculator::expression::evaluate(&format!("floor(sqrt({n}))"), 28).unwrap();
        prop_assert!(v.is_exact());
        prop_assert_eq!(v.q.to_integer().to_string(), n.isqrt().to_string());
        // sqrt(n)·sqrt(n) is n, but unless the root is exact no number of digits proves it is
        // not just below n: refused, never guessed.
        match calculator::expression::evaluate(&format!("floor(sqrt({n}) * sqrt({n}))"), 28) {
            Ok(v) => prop_assert!(v.is_exact() && n.isqrt() * n.isqrt() == n && v.q.to_integer().to_string() == n.to_string()),
            Err(e) => prop_assert!(n.isqrt() * n.isqrt() != n && e.to_string().contains("simplify the expression"), "{}", e),
        }
    }

    #[test]
    fn decimal_rendering_parses_back_to_the_value_when_exact(a in rational()) {
        let d = calculator::format::decimal(&a, 1000);
        if d.exact {
            prop_assert_eq!(parse_str(&d.text).unwrap(), a.q);
        }
    }
}
