"""Regenerate corpus.json: exact_compute cases with answers from Python's own modules.

    python3 tools/calculator/tests/corpus/generate.py > tools/calculator/tests/corpus/corpus.json

Requires Python >= 3.11 (`statistics.stdev` on Decimals is correctly rounded from 3.11 on,
and `statistics.mode` returns the first of several most common values since 3.8).

Each case is the `arguments` of a tools/call, its `kind`, and the expected `fraction` (from
`fractions`, exact) and `decimal` (from `decimal` at the case's precision, ROUND_HALF_EVEN; for
stdev from `statistics.stdev` on Decimals, which is correctly rounded; for expressions with
`sqrt`, evaluated with 100 and with 200 extra digits and kept only when both round to the same
decimal, so the expected value is the correctly rounded one). The seed is fixed, so the file
is reproducible.
"""

import json
import random
import statistics
import sys
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

if sys.version_info < (3, 11):
    sys.exit("generate.py needs Python >= 3.11")

sys.set_int_max_str_digits(100_000)
rng = random.Random(20261126)


def num():
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randint(-10**6, 10**6))
    if kind == 1:
        return f"{rng.randint(-10**5, 10**5)}.{rng.randint(0, 999):03d}"
    if kind == 2:
        return f"{rng.randint(-999, 999)}/{rng.randint(1, 999)}"
    return f"{rng.randint(1, 99)}e{rng.randint(-12, 12)}"


def frac(s):
    return Fraction(Decimal(s)) if "/" not in s else Fraction(s)


def dec(x, p):
    with localcontext() as ctx:
        ctx.prec = p
        ctx.rounding = ROUND_HALF_EVEN
        if isinstance(x, Fraction):
            return str(Decimal(x.numerator) / Decimal(x.denominator))
        return str(+x)


def fraction_text(x):
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


cases = []


def add(arguments, value, p, kind):
    exact = value if isinstance(value, Fraction) else None
    cases.append({
        "kind": kind,
        "arguments": arguments,
        "fraction": fraction_text(exact) if exact is not None else None,
        "decimal": dec(value, p),
    })


for _ in range(150):
    op = rng.choice(["+", "-", "*", "/", "%"])
    a, b = num(), num()
    fa, fb = frac(a), frac(b)
    if op in "/%" and fb == 0:
        continue
    value = {"+": fa + fb, "-": fa - fb, "*": fa * fb, "/": fa / fb, "%": fa % fb}[op]
    p = rng.choice([5, 12, 28, 50])
    add({"operation": "arithmetic", "params": {"operator": op, "x": a, "y": b, "precision": p}}, value, p, "arithmetic")

for _ in range(40):
    base, exp = num(), rng.randint(-6, 6)
    fb = frac(base)
    if fb == 0 and exp < 0:
        continue
    add({"operation": "arithmetic", "params": {"operator": "^", "x": base, "y": exp}}, fb ** exp, 28, "power")

for _ in range(60):
    # Expressions built from random fractions; Python evaluates the same tree exactly.
    terms = [f"({rng.randint(-50, 50)}/{rng.randint(1, 20)})" for _ in range(rng.randint(2, 5))]
    ops = [rng.choice(["+", "-", "*"]) for _ in terms[1:]]
    expr = terms[0] + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:]))
    py = terms[0].replace("(", "Fraction(").replace("/", ",")
    for o, t in zip(ops, terms[1:]):
        py += f" {o} " + t.replace("(", "Fraction(").replace("/", ",")
    value = eval(py, {"Fraction": Fraction})
    add({"operation": "expression", "params": {"expression": expr}}, value, 28, "expression")

for _ in range(40):
    values = [num() for _ in range(rng.randint(2, 12))]
    fs = [frac(v) for v in values]
    fn = rng.choice(["mean", "median", "variance", "pvariance", "sum", "min", "max"])
    value = {
        "mean": lambda: statistics.mean(fs), "median": lambda: Fraction(statistics.median(fs)),
        "variance": lambda: statistics.variance(fs), "pvariance": lambda: statistics.pvariance(fs),
        "sum": lambda: sum(fs, Fraction(0)), "min": lambda: min(fs), "max": lambda: max(fs),
    }[fn]()
    params = {"function": "variance" if fn == "pvariance" else fn, "values": values}
    if fn == "pvariance":
        params["sample"] = False
    add({"operation": "statistics", "params": params}, Fraction(value), 28, "statistics")

for _ in range(30):
    values = [f"{rng.randint(-999, 999)}.{rng.randint(0, 99):02d}" for _ in range(rng.randint(2, 10))]
    p = rng.choice([10, 28, 40])
    with localcontext() as ctx:
        ctx.prec = p
        ctx.rounding = ROUND_HALF_EVEN
        sd = statistics.stdev([Decimal(v) for v in values])
    add({"operation": "statistics", "params": {"function": "stdev", "values": values, "precision": p}}, sd, p, "stdev")


def correctly_rounded(f, p):
    """f() evaluated with 100 and with 200 extra digits, rounded to p digits; None if they differ."""
    rounded = []
    for extra in (100, 200):
        with localcontext() as ctx:
            ctx.prec = p + extra
            value = f()
        with localcontext() as ctx:
            ctx.prec = p
            ctx.rounding = ROUND_HALF_EVEN
            rounded.append(+value)
    return rounded[0] if rounded[0] == rounded[1] else None


def truncated_sqrt(a, digits):
    """sqrt(a) cut after `digits` significant digits, as text (for cancellation cases)."""
    with localcontext() as ctx:
        ctx.prec = digits + 10
        root = Decimal(a).sqrt()
    with localcontext() as ctx:
        ctx.prec = digits
        ctx.rounding = ROUND_FLOOR
        return str(+root)


def sqrt_case():
    """An expression using sqrt, its exact Python counterpart, and whether it is an integer."""
    D = Decimal
    a, b, c = rng.randint(2, 10**6), rng.randint(-999, 999), rng.randint(1, 999)
    shape = rng.randrange(7)
    if shape == 0:
        return f"sqrt({a}) + {b}/{c}", lambda: D(a).sqrt() + D(b) / D(c)
    if shape == 1:
        return f"sqrt({a}) * sqrt({c})", lambda: D(a).sqrt() * D(c).sqrt()
    if shape == 2:
        t = truncated_sqrt(a, rng.randint(10, 40))
        return f"sqrt({a}) - {t}", lambda: D(a).sqrt() - D(t)
    if shape == 3:
        return f"(sqrt({a}) + {b}) / sqrt({c})", lambda: (D(a).sqrt() + D(b)) / D(c).sqrt()
    if shape == 4:
        big = rng.randint(10**5, 10**20)
        return f"sqrt({big}^2 + {c}) - {big}", lambda: (D(big) ** 2 + D(c)).sqrt() - D(big)
    if shape == 5:
        return f"sqrt({a}/{c}) * {b}", lambda: (D(a) / D(c)).sqrt() * D(b)
    k = rng.randint(0, 30)
    return f"floor(sqrt({a}) * 10^{k})", lambda: (D(a).sqrt() * D(10) ** k).to_integral_value(ROUND_FLOOR)


added = 0
while added < 60:
    expr, f = sqrt_case()
    p = rng.choice([10, 28, 50])
    value = correctly_rounded(f, p)
    if value is None or value == 0:
        continue
    if expr.startswith("floor("):
        with localcontext() as ctx:
            ctx.prec = 200
            value = Fraction(int(f()))
    add({"operation": "expression", "params": {"expression": expr, "precision": p}}, value, p, "sqrt-expression")
    added += 1

for _ in range(15):
    values = [num() for _ in range(2 * rng.randint(1, 6))]
    value = Fraction(statistics.median([frac(v) for v in values]))
    add({"operation": "statistics", "params": {"function": "median", "values": values}}, value, 28, "median-even")

for _ in range(15):
    pool = [num() for _ in range(rng.randint(2, 5))]
    values = [rng.choice(pool) for _ in range(rng.randint(3, 12))]
    value = statistics.mode([frac(v) for v in values])
    add({"operation": "statistics", "params": {"function": "mode", "values": values}}, value, 28, "mode")

# Factor to SI and offset, exactly as in src/units.rs.
UNITS = {
    "m": (1, 0), "km": (1000, 0), "mi": (Fraction("1609.344"), 0), "ft": (Fraction("0.3048"), 0),
    "in": (Fraction("0.0254"), 0),
    "kg": (1, 0), "lb": (Fraction("0.45359237"), 0), "oz": (Fraction("0.028349523125"), 0),
    "K": (1, 0), "°C": (1, Fraction("273.15")), "°F": (Fraction(5, 9), Fraction(45967, 180)),
    "km/h": (Fraction(1000, 3600), 0), "m/s": (1, 0), "mph": (Fraction("0.44704"), 0),
    "kWh": (3600000, 0), "J": (1, 0), "BTU": (Fraction("1055.05585262"), 0),
    "GiB": (1073741824, 0), "MB": (10**6, 0),
}
GROUPS = [["m", "km", "mi", "ft", "in"], ["kg", "lb", "oz"], ["K", "°C", "°F"], ["km/h", "m/s", "mph"],
          ["kWh", "J", "BTU"], ["GiB", "MB"]]

for _ in range(25):
    source, target = rng.sample(rng.choice(GROUPS), 2)
    v = num()
    (f1, o1), (f2, o2) = UNITS[source], UNITS[target]
    value = (frac(v) * f1 + o1 - o2) / f2
    p = rng.choice([12, 28])
    params = {"action": "convert", "value": v, "unit": source, "to_unit": target, "precision": p}
    add({"operation": "unit", "params": params}, Fraction(value), p, "unit")

# Round two (appended, so the cases above keep their random draws).

# Fractional exponents: a^(p/q) is the q-th root of a^p, exact when it is (Fraction), else
# correctly rounded (decimal at two extra precisions, kept only when both agree).
for _ in range(30):
    q = rng.choice([2, 3, 4, 5, 7])
    p_ = rng.choice([1, 2, 3, -1, -2])
    if rng.random() < 0.4:
        root = Fraction(rng.randint(1, 40), rng.randint(1, 9))
        a = root ** q
        value = root ** p_
    else:
        a = Fraction(rng.randint(2, 10**5), rng.choice([1, 1, 3, 7]))
        value = None
    expr = f"({fraction_text(a)})^({p_}/{q})"
    prec = rng.choice([10, 28, 50])
    if value is None:
        value = correctly_rounded(lambda: (Decimal(a.numerator) / Decimal(a.denominator)) ** (Decimal(p_) / Decimal(q)), prec)
        if value is None:
            continue
    add({"operation": "expression", "params": {"expression": expr, "precision": prec}}, value, prec, "root")

# Integer parts within 10^-(300..700) of an integer: floor/ceil decided exactly (isqrt), never
# guessed. floor(10^k − sqrt(10^2k + c)) = 10^k − ⌈√(10^2k + c)⌉.
from math import isqrt
for _ in range(12):
    k, c = rng.randint(20, 330), rng.randint(1, 10**6)
    big = 10 ** (2 * k) + c
    r = isqrt(big)
    ceil_root = r if r * r == big else r + 1
    if rng.random() < 0.5:
        expr, value = f"floor(10^{k} - sqrt(10^{2 * k} + {c})) + 5", 10**k - ceil_root + 5
    else:
        expr, value = f"ceil(sqrt(10^{2 * k} + {c}) - 10^{k}) + 5", ceil_root - 10**k + 5
    add({"operation": "expression", "params": {"expression": expr}}, Fraction(value), 28, "boundary")

# Powers up to the documented result size (about 30,000 digits), like products of that size.
for base, exp in [(2, 40000), (10, 25000), (3, 20000), (7, 35000), (Fraction(1, 2), 30000)]:
    add({"operation": "expression", "params": {"expression": f"({fraction_text(base)})^{exp}"}},
        Fraction(base) ** exp, 28, "big-power")

# Operators as pasted from documents: − (U+2212), × and ÷.
for _ in range(12):
    a, b, c = (Fraction(rng.randint(-99, 99), rng.randint(1, 9)) for _ in range(3))
    expr = f"({fraction_text(a)}) \u2212 ({fraction_text(b)}) \u00d7 ({fraction_text(c)}) \u00f7 7"
    add({"operation": "expression", "params": {"expression": expr}}, a - b * c / 7, 28, "pasted")

print(json.dumps(cases, indent=1, ensure_ascii=False))
