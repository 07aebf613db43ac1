"""What the bundled model is taught to write, and the plausible mistakes its demonstrations contain.

An answer adds digit by digit, then gives the result after "####" (what the verifier reads):

    What is 68 plus 29?   ->   8+9=17, 6+2+1=9 #### 97

Each part is a copy of digits or a one-digit fact next to its operands, which a tiny model learns
in minutes; the units digit of a sum written in one go is not (measured: a model that wrote only
"#### 97" got the tens right and the units at chance after 600 steps). The work also gives a
refinement something to check. A wrong answer is a wrong step carried through consistently — a
dropped or an invented carry, a one-digit fact off by one, or an operand digit copied wrong from
the question — as a person (or a half-trained model) gets it wrong. The copy slip is the one the
bundled model itself makes most (measured: 118 of its 133 wrong first answers), so the builder's
second stage teaches refinements that fix it (build_model.py).
"""

from __future__ import annotations

import random
from typing import Optional

from task import Problem

SLIPS = ("drop-carry", "extra-carry", "units-off")


def digits(p: Problem) -> tuple[int, int, int, int]:
    """The operands' digits as the work writes them: tens of a, units of a, tens of b, units of b."""
    return p.a // 10, p.a % 10, p.b // 10, p.b % 10


def worked(p: Problem, slip: Optional[str] = None, off: int = 1) -> str:
    """The digit-by-digit answer for two-digit operands; `slip` makes one step wrong and the rest follow it."""
    return _work(digits(p), slip, off)


def _work(operands: tuple[int, int, int, int], slip: Optional[str] = None, off: int = 1) -> str:
    a1, a0, b1, b0 = operands
    s0 = a0 + b0
    if slip == "units-off":
        s0 = s0 + off if 0 <= s0 + off <= 18 else s0 - off
    carry = s0 // 10
    if slip == "drop-carry":
        carry = 0
    elif slip == "extra-carry":
        carry = 1
    s1 = a1 + b1 + carry
    result = s1 * 10 + s0 % 10
    return f"{a0}+{b0}={s0}, {a1}+{b1}{'+1' if carry else ''}={s1} #### {result}"


def plausible_wrong(rng: random.Random, p: Problem) -> str:
    """A wrong answer: a carry dropped where there is one, invented where there is none, or a units fact off by one."""
    has_carry = (p.a % 10 + p.b % 10) >= 10
    slip = rng.choice(("drop-carry" if has_carry else "extra-carry", "units-off"))
    return worked(p, slip, off=rng.choice((1, -1)))


def plausible_previous(rng: random.Random, p: Problem, wrong: bool) -> str:
    """A previous answer as the model writes it; its result is wrong when `wrong`, else right."""
    return plausible_wrong(rng, p) if wrong else worked(p)


def copy_slip(rng: random.Random, p: Problem) -> str:
    """A wrong answer whose work is right for a miscopied question: one operand digit off by one or
    replaced by another digit of the question (`1+7=8` for the 7 of 74 becoming `1+8=9`)."""
    original = digits(p)
    while True:
        copied = list(original)
        i = rng.randrange(4)
        copied[i] = copied[i] + rng.choice((1, -1)) if rng.random() < 0.5 else rng.choice(original)
        lowest = 1 if i in (0, 2) else 0  # a tens digit stays a two-digit operand
        if copied[i] != original[i] and lowest <= copied[i] <= 9:
            return _work((copied[0], copied[1], copied[2], copied[3]))
