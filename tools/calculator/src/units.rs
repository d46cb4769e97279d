//! Units: exact conversion factors to SI, dimension checking, affine temperatures.
//!
//! A unit expression is symbols joined by `*`, `·` or `/`, each with an optional power
//! (`m^2`, `s^-1`, `m2`, `m²`): `km/h`, `kg*m/s^2`, `kWh`. Temperatures (`K`, `°C`/`degC`,
//! `°F`/`degF`, `°R`) convert on their offset scales only when they stand alone; inside a
//! compound unit they count as temperature differences.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

use crate::approx::Stop;
use crate::number::parse_str;

/// Exponents of length, mass, time, temperature, information.
pub type Dims = [i32; 5];

const L: Dims = [1, 0, 0, 0, 0];
const M: Dims = [0, 1, 0, 0, 0];
const T: Dims = [0, 0, 1, 0, 0];
const K: Dims = [0, 0, 0, 1, 0];
const D: Dims = [0, 0, 0, 0, 1];
const AREA: Dims = [2, 0, 0, 0, 0];
const VOLUME: Dims = [3, 0, 0, 0, 0];
const SPEED: Dims = [1, 0, -1, 0, 0];
const ENERGY: Dims = [2, 1, -2, 0, 0];
const PRESSURE: Dims = [-1, 1, -2, 0, 0];
const POWER: Dims = [2, 1, -3, 0, 0];
const FORCE: Dims = [1, 1, -2, 0, 0];
const FREQUENCY: Dims = [0, 0, -1, 0, 0];

/// Symbol, factor to SI (exact), offset to SI (temperatures), dimension.
const TABLE: &[(&str, &str, &str, Dims)] = &[
    ("m", "1", "0", L),
    ("km", "1000", "0", L),
    ("cm", "0.01", "0", L),
    ("mm", "0.001", "0", L),
    ("um", "1e-6", "0", L),
    ("µm", "1e-6", "0", L),
    ("nm", "1e-9", "0", L),
    ("in", "0.0254", "0", L),
    ("ft", "0.3048", "0", L),
    ("yd", "0.9144", "0", L),
    ("mi", "1609.344", "0", L),
    ("nmi", "1852", "0", L),
    ("kg", "1", "0", M),
    ("g", "0.001", "0", M),
    ("mg", "1e-6", "0", M),
    ("ug", "1e-9", "0", M),
    ("µg", "1e-9", "0", M),
    ("t", "1000", "0", M),
    ("lb", "0.45359237", "0", M),
    ("oz", "0.028349523125", "0", M),
    ("st", "6.35029318", "0", M),
    ("s", "1", "0", T),
    ("sec", "1", "0", T),
    ("ms", "0.001", "0", T),
    ("us", "1e-6", "0", T),
    ("µs", "1e-6", "0", T),
    ("ns", "1e-9", "0", T),
    ("min", "60", "0", T),
    ("h", "3600", "0", T),
    ("hr", "3600", "0", T),
    ("d", "86400", "0", T),
    ("day", "86400", "0", T),
    ("wk", "604800", "0", T),
    ("yr", "31557600", "0", T),
    ("ha", "10000", "0", AREA),
    // The international acre (international foot, 1959), not the US survey acre (4046.8726…).
    ("acre", "4046.8564224", "0", AREA),
    ("L", "0.001", "0", VOLUME),
    ("l", "0.001", "0", VOLUME),
    ("mL", "1e-6", "0", VOLUME),
    ("ml", "1e-6", "0", VOLUME),
    ("cL", "1e-5", "0", VOLUME),
    ("dL", "1e-4", "0", VOLUME),
    ("gal", "0.003785411784", "0", VOLUME),
    ("qt", "0.000946352946", "0", VOLUME),
    ("pt", "0.000473176473", "0", VOLUME),
    ("fl_oz", "0.0000295735295625", "0", VOLUME),
    ("mph", "0.44704", "0", SPEED),
    ("kn", "463/900", "0", SPEED),
    ("kt", "463/900", "0", SPEED),
    ("K", "1", "0", K),
    ("°C", "1", "273.15", K),
    ("degC", "1", "273.15", K),
    ("°F", "5/9", "45967/180", K),
    ("degF", "5/9", "45967/180", K),
    ("°R", "5/9", "0", K),
    ("degR", "5/9", "0", K),
    ("B", "1", "0", D),
    ("bit", "1/8", "0", D),
    ("kB", "1000", "0", D),
    ("MB", "1e6", "0", D),
    ("GB", "1e9", "0", D),
    ("TB", "1e12", "0", D),
    ("PB", "1e15", "0", D),
    ("KiB", "1024", "0", D),
    ("MiB", "1048576", "0", D),
    ("GiB", "1073741824", "0", D),
    ("TiB", "1099511627776", "0", D),
    ("PiB", "1125899906842624", "0", D),
    ("kbit", "125", "0", D),
    ("Mbit", "125000", "0", D),
    ("Gbit", "125000000", "0", D),
    ("J", "1", "0", ENERGY),
    ("kJ", "1000", "0", ENERGY),
    ("MJ", "1e6", "0", ENERGY),
    // The thermochemical calorie (as `kcal` on food labels), not the IT calorie (4.1868).
    ("cal", "4.184", "0", ENERGY),
    ("kcal", "4184", "0", ENERGY),
    ("Wh", "3600", "0", ENERGY),
    ("kWh", "3.6e6", "0", ENERGY),
    ("MWh", "3.6e9", "0", ENERGY),
    ("eV", "1.602176634e-19", "0", ENERGY),
    // The International Table BTU (BTU_IT), not the thermochemical one (1054.35…).
    ("BTU", "1055.05585262", "0", ENERGY),
    ("Pa", "1", "0", PRESSURE),
    ("hPa", "100", "0", PRESSURE),
    ("kPa", "1000", "0", PRESSURE),
    ("MPa", "1e6", "0", PRESSURE),
    ("bar", "1e5", "0", PRESSURE),
    ("mbar", "100", "0", PRESSURE),
    ("atm", "101325", "0", PRESSURE),
    ("psi", "44482216152605/6451600000", "0", PRESSURE),
    ("mmHg", "133.322387415", "0", PRESSURE),
    ("torr", "101325/760", "0", PRESSURE),
    ("W", "1", "0", POWER),
    ("kW", "1000", "0", POWER),
    ("MW", "1e6", "0", POWER),
    ("hp", "745.69987158227022", "0", POWER),
    ("N", "1", "0", FORCE),
    ("kN", "1000", "0", FORCE),
    ("lbf", "4.4482216152605", "0", FORCE),
    ("Hz", "1", "0", FREQUENCY),
    ("kHz", "1000", "0", FREQUENCY),
    ("MHz", "1e6", "0", FREQUENCY),
    ("GHz", "1e9", "0", FREQUENCY),
];

const NAMES: &[(Dims, &str)] = &[
    (L, "length"),
    (M, "mass"),
    (T, "time"),
    (K, "temperature"),
    (D, "information"),
    (AREA, "area"),
    (VOLUME, "volume"),
    (SPEED, "speed"),
    (ENERGY, "energy"),
    (PRESSURE, "pressure"),
    (POWER, "power"),
    (FORCE, "force"),
    (FREQUENCY, "frequency"),
    ([1, 0, -2, 0, 0], "acceleration"),
    ([0; 5], "dimensionless"),
];

/// A parsed unit: SI value = value · factor + offset.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// The expression as written.
    pub symbol: String,
    /// Multiplier to SI.
    pub factor: BigRational,
    /// Offset to SI (non-zero only for a lone °C or °F).
    pub offset: BigRational,
    /// Dimension exponents.
    pub dims: Dims,
}

/// The dimension's name (`speed`), or its exponents when it has no common name.
pub fn dimension_name(dims: &Dims) -> String {
    if let Some((_, name)) = NAMES.iter().find(|(d, _)| d == dims) {
        return (*name).to_owned();
    }
    let symbols = ["L", "M", "T", "Θ", "D"];
    let parts: Vec<String> =
        dims.iter().zip(symbols).filter(|(e, _)| **e != 0).map(|(e, s)| format!("{s}^{e}")).collect();
    parts.join(" ")
}

fn symbol(sym: &str) -> Option<(BigRational, BigRational, Dims)> {
    let (_, factor, offset, dims) = TABLE.iter().find(|(s, ..)| *s == sym)?;
    Some((parse_str(factor).ok()?, parse_str(offset).ok()?, *dims))
}

fn known() -> String {
    TABLE.iter().map(|(s, ..)| *s).collect::<Vec<_>>().join(", ")
}

/// One factor of a unit expression with its power: `m^2`, `s^-1`, `m2`, `m³`.
fn factor(term: &str) -> Result<(BigRational, BigRational, Dims, i32), Stop> {
    let term = term.trim();
    let (base, power) = if let Some((b, p)) = term.split_once('^') {
        (b, p.trim().parse::<i32>().map_err(|_| format!("bad power in unit {term:?}"))?)
    } else if let Some(b) = term.strip_suffix('²') {
        (b, 2)
    } else if let Some(b) = term.strip_suffix('³') {
        (b, 3)
    } else if symbol(term).is_none() && term.len() > 1 && term.ends_with(|c: char| c.is_ascii_digit()) {
        let split = term.len() - 1;
        (&term[..split], term[split..].parse::<i32>().unwrap_or(1))
    } else {
        (term, 1)
    };
    if !(-6..=6).contains(&power) || power == 0 {
        return Err(format!("unit power out of range in {term:?}").into());
    }
    let (f, o, d) =
        symbol(base.trim()).ok_or_else(|| format!("unknown unit {:?}; known units: {}", base.trim(), known()))?;
    Ok((f, o, d, power))
}

/// Parse a unit expression, as people write units: left to right (`kg/m*s` is (kg/m)·s, and
/// `J/(kg*K)` divides by both), `*`, `·` or a space to multiply, `^`, `**` or a trailing digit
/// for powers, parentheses (so a result's own unit, `(km/h)*h`, can be sent back) and `1/s`.
pub fn parse(expr: &str) -> Result<Unit, Stop> {
    if expr.trim().is_empty() || expr.len() > 100 {
        return Err("a unit must be a non-empty expression of at most 100 characters".into());
    }
    let normalized = normalize(expr);
    let mut product = Product { factor: BigRational::one(), dims: [0; 5], count: 0, lone: None };
    product.add(&normalized, 1, 0)?;
    let offset = if product.count == 1 { product.lone.unwrap_or_else(BigRational::zero) } else { BigRational::zero() };
    Ok(Unit { symbol: expr.trim().to_owned(), factor: product.factor, offset, dims: product.dims })
}

/// `·` and `**` spelled as `*` and `^`; a space between two factors (`kW h`) is a product;
/// other spaces go. Look-alike characters people paste are read as what they mean: `℃`/`℉`
/// (one character) as `°C`/`°F`, Greek `μ` as the micro sign `µ`, `⋅`/`×` as `*`, `−` as `-`.
fn normalize(expr: &str) -> String {
    let text = expr
        .replace(['·', '⋅', '×'], "*")
        .replace("**", "^")
        .replace('\u{2103}', "°C")
        .replace('\u{2109}', "°F")
        .replace('\u{3bc}', "\u{b5}")
        .replace('\u{2212}', "-");
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.trim().chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            let before = out.chars().last();
            let after = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            let joins = |c: Option<&char>| c.is_some_and(|c| matches!(c, '*' | '/' | '^' | '(' | ')'));
            if before.is_some_and(|b| !matches!(b, '*' | '/' | '^' | '(')) && after.is_some() && !joins(after) {
                out.push('*');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The factors of a unit expression, multiplied up.
struct Product {
    factor: BigRational,
    dims: Dims,
    count: usize,
    lone: Option<BigRational>,
}

impl Product {
    /// Multiply in `expr` raised to `sign` (±1): its factors left to right, each divided when a
    /// `/` precedes it, a parenthesised group as one factor.
    fn add(&mut self, expr: &str, sign: i32, depth: usize) -> Result<(), Stop> {
        if depth > 4 {
            return Err("unit parentheses nested too deeply".into());
        }
        let (mut level, mut start, mut divide) = (0i32, 0usize, false);
        let mut terms: Vec<(bool, &str)> = Vec::new();
        for (i, c) in expr.char_indices() {
            match c {
                '(' => level += 1,
                ')' => level -= 1,
                '*' | '/' if level == 0 => {
                    terms.push((divide, &expr[start..i]));
                    divide = c == '/';
                    start = i + 1;
                }
                _ => {}
            }
            if level < 0 {
                return Err(format!("unbalanced parentheses in unit {expr:?}").into());
            }
        }
        if level != 0 {
            return Err(format!("unbalanced parentheses in unit {expr:?}").into());
        }
        terms.push((divide, &expr[start..]));
        for (divide, term) in terms {
            let sign = if divide { -sign } else { sign };
            let term = term.trim();
            if let Some(inner) = term.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
                self.add(inner, sign, depth + 1)?;
                continue;
            }
            // `1/s`: a bare 1 is no unit at all.
            if term == "1" {
                continue;
            }
            let (f, o, d, p) = factor(term)?;
            let p = p * sign;
            self.count += 1;
            self.lone = (p == 1).then_some(o);
            self.factor *= num_traits::pow(if p < 0 { f.recip() } else { f }, p.unsigned_abs() as usize);
            for (acc, e) in self.dims.iter_mut().zip(d) {
                *acc += e * p;
            }
        }
        Ok(())
    }
}

/// Convert `value` from `from` to `to` (dimensions must match).
pub fn convert(value: &BigRational, from: &Unit, to: &Unit) -> Result<BigRational, Stop> {
    if from.dims != to.dims {
        return Err(format!(
            "cannot convert {} ({}) to {} ({})",
            from.symbol,
            dimension_name(&from.dims),
            to.symbol,
            dimension_name(&to.dims)
        )
        .into());
    }
    let si = value * &from.factor + &from.offset;
    Ok((si - &to.offset) / &to.factor)
}

/// Refuse adding or subtracting when either side is a temperature on an offset scale
/// (`20 °C + 5 K` and `30 °C − 10 °C` have no single meaning: a reading or a difference?).
pub fn check_additive(left: &Unit, right: &Unit) -> Result<(), Stop> {
    if left.offset.is_zero() && right.offset.is_zero() {
        Ok(())
    } else {
        Err(format!(
            "cannot add or subtract {} and {}: convert affine temperatures (°C, °F) to K before adding or subtracting",
            left.symbol, right.symbol
        )
        .into())
    }
}

/// Whether both units are temperatures on an offset scale (°C, °F): their difference is a
/// temperature difference.
pub fn affine_pair(left: &Unit, right: &Unit) -> bool {
    !left.offset.is_zero() && !right.offset.is_zero() && left.dims == right.dims
}

/// Multiply or divide two units, making the compound unit (`m/s`).
pub fn combine(left: &Unit, right: &Unit, divide: bool) -> Result<Unit, Stop> {
    if !left.offset.is_zero() || !right.offset.is_zero() {
        return Err("cannot multiply or divide temperatures on an offset scale (°C, °F); convert to K first".into());
    }
    let wrap =
        |u: &Unit| if u.symbol.contains(['*', '/', '·']) { format!("({})", u.symbol) } else { u.symbol.clone() };
    let mut dims = left.dims;
    for (acc, e) in dims.iter_mut().zip(right.dims) {
        *acc += if divide { -e } else { e };
    }
    Ok(Unit {
        symbol: format!("{}{}{}", wrap(left), if divide { "/" } else { "*" }, wrap(right)),
        factor: if divide { &left.factor / &right.factor } else { &left.factor * &right.factor },
        offset: BigRational::zero(),
        dims,
    })
}

/// An integer as a rational (for tests and callers).
pub fn int(i: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(v: &str, from: &str, to: &str) -> BigRational {
        convert(&parse_str(v).unwrap(), &parse(from).unwrap(), &parse(to).unwrap()).unwrap()
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(conv("100", "°C", "°F"), int(212));
        assert_eq!(conv("-40", "degF", "degC"), int(-40));
        assert_eq!(conv("0", "K", "°C"), parse_str("-273.15").unwrap());
        assert_eq!(conv("1", "mi", "km"), parse_str("1.609344").unwrap());
        assert_eq!(conv("36", "km/h", "m/s"), int(10));
        assert_eq!(conv("1", "kWh", "J"), int(3_600_000));
        assert_eq!(conv("1", "GiB", "MiB"), int(1024));
        assert_eq!(conv("1", "m^2", "cm2"), int(10_000));
        assert_eq!(conv("1", "m³", "L"), int(1000));
        assert_eq!(conv("1", "atm", "bar"), parse_str("1.01325").unwrap());
        assert_eq!(conv("1", "kg*m/s^2", "N"), int(1));
        assert_eq!(conv("1", "psi", "lbf/in^2"), int(1));
        // A temperature inside a compound unit is a difference: J/°C equals J/K.
        assert_eq!(conv("1", "J/degC", "J/K"), int(1));
    }

    /// Before: parentheses, a result's own unit, `**`, spaces, `1/s`, `hr` and `sec` were
    /// refused, and `kg/m*s` was read as kg/(m·s). Now units read as people write them.
    #[test]
    fn pasted_look_alikes_are_read_as_what_they_mean() {
        // ℃ (U+2103), Greek μ (U+03BC) for the micro sign, × and − from documents.
        assert_eq!(conv("100", "\u{2103}", "\u{2109}"), int(212));
        assert_eq!(conv("1", "\u{3bc}m", "nm"), int(1000));
        assert_eq!(conv("1", "kg\u{d7}m/s^2", "N"), int(1));
        assert_eq!(conv("1", "s^\u{2212}1", "Hz"), int(1));
    }

    #[test]
    fn units_read_as_people_write_them() {
        assert_eq!(conv("1", "J/(kg*K)", "J/kg/K"), int(1));
        assert_eq!(conv("2", "(km/h)*h", "km"), int(2));
        assert_eq!(conv("1", "m**2", "cm^2"), int(10_000));
        assert_eq!(conv("1", "kW h", "kWh"), int(1));
        assert_eq!(conv("1", "kW · h", "kWh"), int(1));
        assert_eq!(conv("60", "1/min", "1/s"), int(1));
        assert_eq!(conv("1", "hr", "sec"), int(3600));
        // Left to right: (kg/m)·s, not kg/(m·s).
        assert_eq!(parse("kg/m*s").unwrap().dims, parse("kg*s/m").unwrap().dims);
        assert_ne!(parse("kg/m*s").unwrap().dims, parse("kg/(m*s)").unwrap().dims);
        assert!(parse("J/(kg*K").unwrap_err().to_string().contains("unbalanced"));
        assert!(parse("((((((m))))))").unwrap_err().to_string().contains("nested"));
    }

    #[test]
    fn dimension_errors_and_unknown_units_are_refused() {
        let err = convert(&int(1), &parse("m").unwrap(), &parse("s").unwrap()).unwrap_err().to_string();
        assert!(err.contains("length") && err.contains("time"), "{err}");
        assert!(parse("furlong").unwrap_err().to_string().contains("unknown unit"));
        assert!(parse("m^99").is_err());
        assert!(combine(&parse("°C").unwrap(), &parse("s").unwrap(), false).is_err());
        for (l, r) in [("°C", "K"), ("K", "degF"), ("°F", "°F")] {
            let err = check_additive(&parse(l).unwrap(), &parse(r).unwrap()).unwrap_err().to_string();
            assert!(err.contains("convert affine temperatures (°C, °F) to K"), "{err}");
        }
        assert!(check_additive(&parse("K").unwrap(), &parse("°R").unwrap()).is_ok());
        assert!(check_additive(&parse("J/°C").unwrap(), &parse("J/K").unwrap()).is_ok());
        let speed = combine(&parse("km").unwrap(), &parse("h").unwrap(), true).unwrap();
        assert_eq!((speed.symbol.as_str(), dimension_name(&speed.dims).as_str()), ("km/h", "speed"));
    }
}
