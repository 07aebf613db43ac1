"""What kind of mistake each answer of an evaluation makes, and what each refinement did to it.

    .venv/bin/python examples/arithmetic/slips.py examples/arithmetic/.aries/aries.db [--evaluation ID]

Reads the steps of one `aries eval` (default: the latest) from the project's database and sorts
every answer by its first wrong part: `copy` (an operand digit that is not the question's), `fact0`
(the units sum), `carry`, `fact1` (the tens sum), `result` (the number after "####" does not
follow the work), `format` (not the worked form), or `ok`. Then, for refinement k, how many right
and wrong previous answers it kept, changed into right ones, or changed into wrong ones; and the
paired difference refine@K − direct (is the last step's number right, minus is the first answer's,
averaged over the prompts, ± its standard error) with the answers it fixed and broke. This is
how docs/results.md found that the bundled model's mistakes are copy slips (the reason for
build_model.py's check-and-fix stage).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sqlite3
import sys
from collections import Counter
from itertools import groupby
from pathlib import Path

from solutions import digits
from task import Problem

WORK = re.compile(r"(\d)\+(\d)=(\d+), (\d)\+(\d)(\+1)?=(\d+) #### (\d+)")
KINDS = ("ok", "copy", "fact0", "carry", "fact1", "result", "format")


def kind(a: int, b: int, text: str) -> str:
    """The first wrong part of the worked answer `text` to a + b (KINDS)."""
    m = WORK.fullmatch(text.strip())
    if not m:
        return "format"
    a0, b0, s0, a1, b1, carry, s1, result = m.groups()
    if (int(a1), int(a0), int(b1), int(b0)) != digits(Problem(a, b)):
        return "copy"
    if int(s0) != a % 10 + b % 10:
        return "fact0"
    if bool(carry) != (int(s0) >= 10):
        return "carry"
    if int(s1) != a // 10 + b // 10 + (1 if carry else 0):
        return "fact1"
    if int(result) != int(s1) * 10 + int(s0) % 10:
        return "result"
    return "ok"


def right(a: int, b: int, text: str) -> bool:
    """What the verifier reads: the number after "####" is the sum."""
    m = re.search(r"####\s*(-?\d+)", text)
    return m is not None and int(m.group(1)) == a + b


def paired(differences: list[int]) -> tuple[float, float]:
    """Mean and standard error of per-prompt differences (last step right − first answer right)."""
    n = len(differences)
    mean = sum(differences) / n
    var = sum((d - mean) ** 2 for d in differences) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n)


def operands(prompt_json: str) -> tuple[int, int]:
    prompt = json.loads(prompt_json)
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
    numbers = [int(x) for x in re.findall(r"\d+", text)]
    if len(numbers) < 2:
        raise ValueError(f"prompt {text!r} does not name two numbers: not a prompt of the arithmetic task")
    return numbers[0], numbers[1]


def tally(db: Path, evaluation: int | None) -> tuple[int, list[Counter], Counter, list[int]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        if evaluation is None:
            row = con.execute("SELECT MAX(id) FROM evaluations WHERE status = 'complete'").fetchone()
            if row[0] is None:
                raise ValueError(f"{db}: no complete evaluation; run `aries eval` first")
            evaluation = int(row[0])
        # One query: every step of the evaluation, in trajectory order, then step order.
        rows = con.execute("SELECT t.id, p.prompt_json, s.text FROM trajectories t JOIN prompts p ON p.id = t.prompt_id "
                           "JOIN steps s ON s.trajectory_id = t.id WHERE t.evaluation_id = ? ORDER BY t.seq, t.id, s.idx",
                           (evaluation,)).fetchall()
        if not rows:
            raise ValueError(f"{db}: evaluation {evaluation} has no trajectories with steps (see `aries stats`)")
        by_step: list[Counter] = []
        moves: Counter = Counter()
        differences: list[int] = []
        for _, group in groupby(rows, key=lambda r: r[0]):
            steps = list(group)
            a, b = operands(steps[0][1])
            texts = [text for _, _, text in steps]
            kinds = [kind(a, b, t) for t in texts]
            differences.append(int(right(a, b, texts[-1])) - int(right(a, b, texts[0])))
            for i, k in enumerate(kinds):
                while len(by_step) <= i:
                    by_step.append(Counter())
                by_step[i][k] += 1
            for i in range(1, len(texts)):
                before = "right" if kinds[i - 1] == "ok" else "wrong"
                after = "kept" if texts[i] == texts[i - 1] else ("→ right" if kinds[i] == "ok" else "→ wrong")
                moves[(i, before, after)] += 1
        return evaluation, by_step, moves, differences
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Sort an evaluation's answers by their first wrong part.")
    parser.add_argument("db", type=Path, help="the project's .aries/aries.db")
    parser.add_argument("--evaluation", type=int, help="evaluation id (default: the latest complete one)")
    args = parser.parse_args()
    if not args.db.is_file():
        print(f"slips.py: {args.db}: no such database; give a project's .aries/aries.db", file=sys.stderr)
        return 2
    try:
        evaluation, by_step, moves, differences = tally(args.db, args.evaluation)
    except (ValueError, sqlite3.Error) as exc:
        print(f"slips.py: {exc}", file=sys.stderr)
        return 2
    print(f"evaluation {evaluation}: answers by their first wrong part")
    print("step  " + "  ".join(f"{k:>6}" for k in KINDS))
    for i, counts in enumerate(by_step):
        print(f"y{i:<4} " + "  ".join(f"{counts[k]:>6}" for k in KINDS))
    print("refinement k: previous answer → what the refinement did")
    for (i, before, after), n in sorted(moves.items()):
        print(f"  {i}: {before:5} {after:8} {n}")
    mean, se = paired(differences)
    print(f"refine@K − direct, paired over {len(differences)} prompts: {100 * mean:+.1f} ± {100 * se:.1f} points "
          f"({differences.count(1)} fixed, {differences.count(-1)} broken)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
