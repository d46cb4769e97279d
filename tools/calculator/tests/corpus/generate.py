"""Regenerate corpus.json: exact_compute cases with answers from Python's own modules.

    python3 tools/calculator/tests/corpus/generate.py > tools/calculator/tests/corpus/corpus.json

Each case is the `arguments` of a tools/call and the expected `fraction` (from `fractions`,
exact) and `decimal` (from `decimal` at the case's precision, ROUND_HALF_EVEN; for stdev from
`statistics.stdev` on Decimals, which is correctly rounded). The seed is fixed, so the file is
reproducible.
"""

import json
import random
import statistics
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

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


def add(arguments, value, p):
    exact = value if isinstance(value, Fraction) else None
    cases.append({
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
    add({"operation": "arithmetic", "params": {"operator": op, "x": a, "y": b, "precision": p}}, value, p)

for _ in range(40):
    base, exp = num(), rng.randint(-6, 6)
    fb = frac(base)
    if fb == 0 and exp < 0:
        continue
    add({"operation": "arithmetic", "params": {"operator": "^", "x": base, "y": exp}}, fb ** exp, 28)

for _ in range(60):
    # Expressions built from random fractions; Python evaluates the same tree exactly.
    terms = [f"({rng.randint(-50, 50)}/{rng.randint(1, 20)})" for _ in range(rng.randint(2, 5))]
    ops = [rng.choice(["+", "-", "*"]) for _ in terms[1:]]
    expr = terms[0] + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:]))
    py = terms[0].replace("(", "Fraction(").replace("/", ",")
    for o, t in zip(ops, terms[1:]):
        py += f" {o} " + t.replace("(", "Fraction(").replace("/", ",")
    value = eval(py, {"Fraction": Fraction})
    add({"operation": "expression", "params": {"expression": expr}}, value, 28)

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
    add({"operation": "statistics", "params": params}, Fraction(value), 28)

for _ in range(30):
    values = [f"{rng.randint(-999, 999)}.{rng.randint(0, 99):02d}" for _ in range(rng.randint(2, 10))]
    p = rng.choice([10, 28, 40])
    with localcontext() as ctx:
        ctx.prec = p
        ctx.rounding = ROUND_HALF_EVEN
        sd = statistics.stdev([Decimal(v) for v in values])
    add({"operation": "statistics", "params": {"function": "stdev", "values": values, "precision": p}}, sd, p)

print(json.dumps(cases, indent=1))
