//! The JSON Schemas `exact_compute` publishes in `tools/list`.

use serde_json::{json, Value};

/// `arguments` of `exact_compute`.
pub fn input() -> Value {
    let number = json!({ "type": ["number", "string"], "description": "a JSON number or a string: \"1.25\", \"-3/7\", \"1e-30\". \
        JSON numbers are read as 64-bit floats, so one with more than 15 significant digits (or an integer beyond \
        64 bits) is refused: pass such numbers as strings, e.g. \"123456789012345678901234567890\"" });
    let quantity = json!({ "type": "object", "required": ["value", "unit"],
        "properties": { "value": number, "unit": { "type": "string" } } });
    json!({
        "type": "object",
        "required": ["operation", "params"],
        "properties": {
            "operation": { "type": "string", "enum": ["arithmetic", "expression", "statistics", "unit"] },
            "params": {
                "type": "object",
                "description": "Depends on operation. Every params object may carry precision (significant digits, 1-1000, default 28).",
                "properties": {
                    "precision": { "type": "integer", "minimum": 1, "maximum": 1000 },
                    "operator": { "type": "string", "enum": ["add", "sub", "mul", "div", "pow", "mod", "+", "-", "*", "/", "^", "%"] },
                    "operands": { "type": "array", "items": number, "maxItems": 10000, "description": "instead of x and y: the operator applied across the list (pow groups from the right: [2,3,2] is 2^(3^2))" },
                    "x": number,
                    "y": number,
                    "expression": { "type": "string", "maxLength": 10000,
                        "description": "+ - * / ^ %, parentheses, abs min max floor ceil round sqrt" },
                    "function": { "type": "string", "enum": ["mean", "median", "mode", "variance", "stdev", "min", "max", "sum", "count", "quantile"] },
                    "values": { "type": "array", "items": number, "maxItems": 100000 },
                    "sample": { "type": "boolean", "default": true },
                    "q": number,
                    "action": { "type": "string", "enum": ["convert", "arithmetic"] },
                    "value": number,
                    "unit": { "type": "string", "examples": ["km/h", "°C", "kWh", "GiB"] },
                    "to_unit": { "type": "string" },
                    "left": quantity,
                    "right": quantity,
                    "result_unit": { "type": "string" }
                }
            }
        },
        "examples": [{ "operation": "arithmetic", "params": { "operator": "+", "x": 1, "y": 2 } }]
    })
}

/// `structuredContent` of a successful call.
pub fn output() -> Value {
    json!({
        "type": "object",
        "required": ["operation", "result"],
        "properties": {
            "operation": { "type": "string" },
            "action": { "type": "string" },
            "result": {
                "type": "object",
                "required": ["decimal", "decimal_is_exact", "precision"],
                "properties": {
                    "fraction": { "type": ["string", "null"], "description": "exact value as \"n\" or \"n/d\"; null when irrational" },
                    "decimal": { "type": "string" },
                    "decimal_is_exact": { "type": "boolean" },
                    "precision": { "type": "integer" }
                }
            },
            "unit": { "type": "string" },
            "dimension": { "type": "string" }
        }
    })
}
