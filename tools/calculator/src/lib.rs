//! `exact_compute`: exact arithmetic, expressions, statistics and unit conversion.
//!
//! Everything is computed on arbitrary-precision rationals, so `0.1 + 0.2` is exactly `0.3`
//! and `1/3` comes back as the fraction `"1/3"` with a decimal rounded to `precision`
//! significant digits. Only square roots (`sqrt`, `stdev`) can be irrational; results that
//! use them carry proven error bounds and are correctly rounded to the requested precision.
//!
//! | module | role |
//! |---|---|
//! | [`number`] | parsing numbers, limits |
//! | [`rational`] | fast exact operations and size-checked sums |
//! | [`approx`] | square roots, error bounds, guard digits until correctly rounded |
//! | [`format`] | fractions and decimal rendering |
//! | [`arithmetic`] | the operators |
//! | [`expression`] | the expression parser |
//! | [`statistics`] | descriptive statistics |
//! | [`units`] | unit conversion and unit arithmetic |
//! | [`schema`] | the published input and output schemas |

pub mod approx;
pub mod arithmetic;
pub mod expression;
pub mod format;
pub mod number;
pub mod rational;
pub mod schema;
pub mod statistics;
pub mod units;

use num_rational::BigRational;
use serde_json::{json, Value};
use tool_kit::{tool_result, CallOutcome, ToolServer, ToolSpec};

use crate::approx::Stop;
use crate::arithmetic::{apply, Op};
use crate::format::{number_json, number_text};
use crate::number::{parse_value, precision, Real};

/// Most operands accepted by `arithmetic`.
pub const MAX_OPERANDS: usize = 10_000;

/// The tool server answering `exact_compute`.
pub fn server() -> ToolServer {
    ToolServer {
        name: "mcp-gateway-calculator",
        version: env!("CARGO_PKG_VERSION"),
        tools: vec![ToolSpec {
            name: "exact_compute",
            description: "Exact arithmetic on arbitrary-precision rationals (no floating-point error), \
                arithmetic expressions, descriptive statistics and unit conversion. Results give the exact \
                fraction and a decimal rounded to `precision` significant digits.",
            input_schema: schema::input(),
            output_schema: Some(schema::output()),
        }],
        call: std::sync::Arc::new(call),
        max_body_bytes: 1 << 20,
        call_timeout: std::time::Duration::from_secs(10),
    }
}

fn field<'a>(params: &'a Value, name: &str) -> Result<&'a Value, Stop> {
    params.get(name).filter(|v| !v.is_null()).ok_or_else(|| Stop::Refused(format!("params.{name} is required")))
}

fn text_field<'a>(params: &'a Value, name: &str) -> Result<&'a str, Stop> {
    field(params, name)?.as_str().ok_or_else(|| Stop::Refused(format!("params.{name} must be a string")))
}

fn numbers(v: &Value, name: &str, limit: usize) -> Result<Vec<Real>, Stop> {
    let items = v.as_array().ok_or_else(|| format!("params.{name} must be an array of numbers"))?;
    if items.len() > limit {
        return Err(format!("too many {name}: at most {limit}").into());
    }
    items.iter().map(|x| parse_value(x).map(Real::exact)).collect()
}

/// The result of a numeric operation: the number and the same as text.
fn numeric(operation: &str, x: &Real, p: u32) -> Value {
    tool_result(number_text(x, p), json!({ "operation": operation, "result": number_json(x, p) }))
}

fn arithmetic(params: &Value, p: u32) -> CallOutcome {
    let op = Op::parse(text_field(params, "operator")?)?;
    let operands = match params.get("operands") {
        Some(list) if !list.is_null() => numbers(list, "operands", MAX_OPERANDS)?,
        _ => vec![Real::exact(parse_value(field(params, "x")?)?), Real::exact(parse_value(field(params, "y")?)?)],
    };
    let result = match op {
        Op::Add | Op::Sub => Real::exact(signed_sum(op, operands)?),
        // A power tower groups from the right, as `2^3^2` does in expressions (and in Python and
        // mathematics): [2, 3, 2] is 2^(3^2) = 512, not (2^3)^2 = 64.
        // Each step is settled to the precision (`2^0.5` is a root) and refused when its result
        // outgrows the size limit.
        Op::Pow => {
            let mut iter = operands.into_iter().rev();
            let last = iter.next().ok_or("params.operands must hold at least one number")?;
            iter.try_fold(last, |acc, x| apply(op, &x, &acc, p))?
        }
        _ => {
            let mut iter = operands.into_iter();
            let first = iter.next().ok_or("params.operands must hold at least one number")?;
            iter.try_fold(first, |acc, x| apply(op, &acc, &x, p))?
        }
    };
    Ok(numeric("arithmetic", &result, p))
}

/// `a + b + c…` or `a − b − c…` as one sum, so oversized common denominators are refused
/// before computing (see [`rational::sum`]).
fn signed_sum(op: Op, operands: Vec<Real>) -> Result<BigRational, Stop> {
    let mut terms: Vec<BigRational> = operands.into_iter().map(|r| r.q).collect();
    if terms.is_empty() {
        return Err("params.operands must hold at least one number".into());
    }
    if op == Op::Sub {
        for t in &mut terms[1..] {
            *t = -std::mem::take(t);
        }
    }
    rational::sum(&terms)
}

fn stats(params: &Value, p: u32) -> CallOutcome {
    let function = text_field(params, "function")?;
    let values: Vec<_> =
        numbers(field(params, "values")?, "values", statistics::MAX_VALUES)?.into_iter().map(|r| r.q).collect();
    let sample = match params.get("sample") {
        None | Some(Value::Null) => true,
        Some(v) => v.as_bool().ok_or("params.sample must be true or false")?,
    };
    let q = params.get("q").filter(|v| !v.is_null()).map(parse_value).transpose()?;
    let result = statistics::compute(function, &values, sample, q.as_ref(), p)?;
    Ok(numeric("statistics", &result, p))
}

fn quantity(v: &Value, name: &str) -> Result<(Real, units::Unit), Stop> {
    let value = parse_value(field(v, "value").map_err(|_| format!("params.{name}.value is required"))?)?;
    let unit = units::parse(v.get("unit").and_then(Value::as_str).ok_or(format!("params.{name}.unit is required"))?)?;
    Ok((Real::exact(value), unit))
}

fn unit_result(action: &str, value: &Real, unit: &units::Unit, p: u32) -> Value {
    let text = format!("{} {}", number_text(value, p), unit.symbol);
    let structured = json!({
        "operation": "unit",
        "action": action,
        "result": number_json(value, p),
        "unit": unit.symbol,
        "dimension": units::dimension_name(&unit.dims),
    });
    tool_result(text, structured)
}

fn unit(params: &Value, p: u32) -> CallOutcome {
    match text_field(params, "action")? {
        "convert" => {
            let value = parse_value(field(params, "value")?)?;
            let from = units::parse(text_field(params, "unit")?)?;
            let to = units::parse(text_field(params, "to_unit")?)?;
            Ok(unit_result("convert", &Real::exact(units::convert(&value, &from, &to)?), &to, p))
        }
        "arithmetic" => {
            let op = Op::parse(text_field(params, "operator")?)?;
            let (lv, lu) = quantity(field(params, "left")?, "left")?;
            let (rv, ru) = quantity(field(params, "right")?, "right")?;
            let (value, unit) = match op {
                // Two temperatures on an offset scale: their difference is a temperature
                // difference, in kelvin (30 °C − 10 °C = 20 K, i.e. 20 Δ°C), as pint answers.
                Op::Sub if units::affine_pair(&lu, &ru) => {
                    let kelvin = units::parse("K")?;
                    let l = Real::exact(units::convert(&lv.q, &lu, &kelvin)?);
                    let r = Real::exact(units::convert(&rv.q, &ru, &kelvin)?);
                    if let Some(target) = params.get("result_unit").and_then(Value::as_str) {
                        if !num_traits::Zero::is_zero(&units::parse(target)?.offset) {
                            return Err(format!(
                                "{} minus {} is a temperature difference: ask for it in K (or °R), not on \
                                 an offset scale like {target}",
                                lu.symbol, ru.symbol
                            )
                            .into());
                        }
                    }
                    (apply(op, &l, &r, p)?, kelvin)
                }
                Op::Add | Op::Sub => {
                    units::check_additive(&lu, &ru)?;
                    let right = Real::exact(units::convert(&rv.q, &ru, &lu).map_err(|e| format!("{op:?}: {e}"))?);
                    (apply(op, &lv, &right, p)?, lu)
                }
                Op::Mul | Op::Div => (apply(op, &lv, &rv, p)?, units::combine(&lu, &ru, op == Op::Div)?),
                Op::Pow | Op::Mod => return Err("unit arithmetic supports add, sub, mul and div".into()),
            };
            match params.get("result_unit").and_then(Value::as_str) {
                Some(target) => {
                    let target = units::parse(target)?;
                    let converted = Real::exact(units::convert(&value.q, &unit, &target)?);
                    Ok(unit_result("arithmetic", &converted, &target, p))
                }
                None => Ok(unit_result("arithmetic", &value, &unit, p)),
            }
        }
        other => Err(format!("unknown unit action {other:?}: use convert or arithmetic").into()),
    }
}

/// Answer a `tools/call` of `exact_compute`; bad input is an `Err` with an actionable message.
pub fn call(_tool: &str, arguments: Value) -> CallOutcome {
    let operation = arguments
        .get("operation")
        .and_then(Value::as_str)
        .ok_or("arguments.operation is required: one of arithmetic, expression, statistics, unit")?;
    let params = arguments.get("params").cloned().unwrap_or_else(|| json!({}));
    if !params.is_object() {
        return Err("arguments.params must be an object".into());
    }
    let p = precision(&params)?;
    match operation {
        "arithmetic" => arithmetic(&params, p),
        "expression" => {
            let result = expression::evaluate(text_field(&params, "expression")?, p)?;
            Ok(numeric("expression", &result, p))
        }
        "statistics" => stats(&params, p),
        "unit" => unit(&params, p),
        other => Err(format!("unknown operation {other:?}: use arithmetic, expression, statistics or unit").into()),
    }
}
