"""The embedded task: adding two two-digit numbers, asked in three ways, with a numeric answer.

    Compute 68+29.
    What is 68 plus 29?
    Ann has 68 stamps and gets 29 more. How many stamps does Ann have now?

The model answers "8+9=17, 6+2+1=9 #### 97" (solutions.py), and each prompt's "answer" is that worked
solution: the engine's verifier compares the numbers after "####" (held-out accuracy), and its
solution check ("verifier:solution") compares the whole work, so that a sum right by luck with
wrong digits is not chosen as a good answer. Why this task: a tiny model learns it partly in minutes on a CPU, its mistakes are
carries and one-digit facts, and the reward is exact — so the ARIES loop has something real to
improve, and the improvement can be measured. See docs/results.md.

Splits never overlap: a problem's split is a hash of its numbers (a, b), so the same sum lands in
the same split whatever the wording, the seed or the sizes.

    .venv/bin/python examples/arithmetic/task.py     # writes prompts/train.jsonl, prompts/heldout.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
PROMPTS_DIR = HERE / "prompts"

OPERAND_RANGE = (10, 99)
HELDOUT_PER_MILLE = 125  # share of the (a, b) space reserved for held-out prompts
DEFAULT_SEED = 20261129
DEFAULT_TRAIN = 4000
DEFAULT_HELDOUT = 500

NAMES = ("Ann", "Ben", "Cleo", "Dev", "Eli", "Fay")
THINGS = ("apples", "books", "coins", "stamps", "shells", "marbles")
FORMS = 3


@dataclass(frozen=True)
class Problem:
    a: int
    b: int
    form: int = 0  # 0: "Compute a+b."  1: "What is a plus b?"  2: a short story
    who: int = 0  # index into NAMES (story form)
    what: int = 0  # index into THINGS (story form)

    @property
    def c(self) -> int:
        return self.a + self.b

    @property
    def question(self) -> str:
        if self.form == 0:
            return f"Compute {self.a}+{self.b}."
        if self.form == 1:
            return f"What is {self.a} plus {self.b}?"
        name, thing = NAMES[self.who], THINGS[self.what]
        return f"{name} has {self.a} {thing} and gets {self.b} more. How many {thing} does {name} have now?"

    @property
    def answer(self) -> str:
        return str(self.c)

    @property
    def id(self) -> str:
        return f"add-{self.a}-{self.b}-{self.form}{self.who}{self.what}"

    def row(self) -> dict:
        from solutions import worked  # solutions imports Problem from this module

        return {"id": self.id, "prompt": self.question, "answer": worked(self)}


def split_of(a: int, b: int) -> str:
    """'heldout' or 'train', from a hash of the two numbers alone (not of the wording or any seed)."""
    digest = hashlib.sha256(f"{a}+{b}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") % 1000 < HELDOUT_PER_MILLE else "train"


def random_problem(rng: random.Random) -> Problem:
    return Problem(rng.randint(*OPERAND_RANGE), rng.randint(*OPERAND_RANGE), rng.randrange(FORMS),
                   rng.randrange(len(NAMES)), rng.randrange(len(THINGS)))


def problems(split: str, seed: int, distinct: bool = True) -> Iterator[Problem]:
    """Problems of one split in a seeded order (an endless stream); `distinct` skips sums already given."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split is {split!r}; use 'train' or 'heldout'")
    rng = random.Random(f"{seed}:{split}")
    seen: set[tuple[int, int]] = set()
    while True:
        p = random_problem(rng)
        if split_of(p.a, p.b) != split or (distinct and (p.a, p.b) in seen):
            continue
        if distinct:
            seen.add((p.a, p.b))
        yield p


def take(split: str, n: int, seed: int = DEFAULT_SEED) -> list[Problem]:
    stream = problems(split, seed)
    return [next(stream) for _ in range(n)]


def write_prompts(out_dir: Path, n_train: int, n_heldout: int, seed: int) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, n in (("train", n_train), ("heldout", n_heldout)):
        path = out_dir / f"{split}.jsonl"
        path.write_text("".join(json.dumps(p.row()) + "\n" for p in take(split, n, seed)), encoding="utf-8")
        written[split] = path
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the arithmetic task's train and held-out prompts.")
    parser.add_argument("--out", type=Path, default=PROMPTS_DIR)
    parser.add_argument("--train", type=int, default=DEFAULT_TRAIN)
    parser.add_argument("--heldout", type=int, default=DEFAULT_HELDOUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    for split, path in write_prompts(args.out, args.train, args.heldout, args.seed).items():
        print(f"{split}: {path}")


if __name__ == "__main__":
    main()
