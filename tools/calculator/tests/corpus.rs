//! Agreement with Python: `corpus/corpus.json` holds cases whose answers come from Python's
//! `fractions`, `decimal` and `statistics` (regenerate with `corpus/generate.py`, Python ≥ 3.11).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use calculator::number::parse_str;
use serde_json::Value;

#[test]
fn results_agree_exactly_with_pythons_fractions_decimal_and_statistics() {
    let corpus: Vec<Value> = serde_json::from_str(include_str!("corpus/corpus.json")).unwrap();
    let mut kinds = BTreeMap::new();
    for case in &corpus {
        *kinds.entry(case["kind"].as_str().unwrap()).or_insert(0) += 1;
        let result =
            calculator::call("exact_compute", case["arguments"].clone()).unwrap_or_else(|e| panic!("{case}: {e}"));
        let got = &result["structuredContent"]["result"];
        if let Some(fraction) = case["fraction"].as_str() {
            assert_eq!(got["fraction"].as_str(), Some(fraction), "{case}");
        }
        // Same value at the same precision (Python may write 1.2E+5 where we write 120000).
        let (want, have) = (case["decimal"].as_str().unwrap(), got["decimal"].as_str().unwrap());
        match (parse_str(have), parse_str(want)) {
            (Ok(h), Ok(w)) => assert_eq!(h, w, "{case}: {have} vs {want}"),
            // Exponents past what an input may carry (2^40000 ≈ 1.58E+12041): the same text.
            _ => {
                let split = |t: &str| {
                    let (m, e) = t.to_lowercase().split_once('e').map(|(m, e)| (m.to_owned(), e.to_owned())).unwrap();
                    (parse_str(&m).unwrap(), e.parse::<i64>().unwrap())
                };
                assert_eq!(split(have), split(want), "{}", case["arguments"]["params"]["expression"]);
            }
        }
    }
    assert!(corpus.len() >= 400, "{}", corpus.len());
    for kind in [
        "arithmetic",
        "power",
        "expression",
        "statistics",
        "stdev",
        "sqrt-expression",
        "median-even",
        "mode",
        "unit",
        "root",
        "boundary",
    ] {
        assert!(kinds.get(kind).is_some_and(|n| *n >= 10), "too few {kind} cases: {kinds:?}");
    }
    assert!(kinds.get("big-power").is_some_and(|n| *n >= 5) && kinds.get("pasted").is_some_and(|n| *n >= 10));
}
