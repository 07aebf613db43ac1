"""The bundled arithmetic task (examples/arithmetic): a deterministic generator whose train and
held-out splits never overlap and whose answers are right; and the bundled model it builds.

Run: .venv/bin/python -m pytest engine/trainer/tests/test_arithmetic_task.py
The slow reproduction test (about the build time of the model) runs only with ARIES_SLOW_TESTS=1.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "arithmetic"
sys.path.insert(0, str(EXAMPLE))

import task  # noqa: E402
import solutions  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_same_seed_same_problems_other_seed_other_order():
    assert task.take("train", 50, seed=1) == task.take("train", 50, seed=1)
    assert task.take("train", 50, seed=1) != task.take("train", 50, seed=2)


def test_splits_are_disjoint_whatever_the_seed_or_wording():
    sums = lambda split, n, seed: {(p.a, p.b) for p in task.take(split, n, seed=seed)}  # noqa: E731
    train = sums("train", 3000, 1) | sums("train", 3000, 2)
    heldout = sums("heldout", 600, 1) | sums("heldout", 600, 3)
    assert not train & heldout
    assert all(task.split_of(p.a, p.b) == "heldout" for p in task.take("heldout", 200, seed=5))
    assert len(sums("train", 3000, 1)) == 3000  # distinct sums within a split


def test_answers_are_right_and_questions_name_both_numbers():
    for p in task.take("train", 500, seed=7) + task.take("heldout", 100, seed=7):
        assert int(p.answer) == p.a + p.b
        assert str(p.a) in p.question and str(p.b) in p.question
        assert all(task.OPERAND_RANGE[0] <= n <= task.OPERAND_RANGE[1] for n in (p.a, p.b))
    forms = {p.form for p in task.take("train", 300, seed=1)}
    assert forms == set(range(task.FORMS))


def test_committed_prompt_files_are_what_the_generator_writes(tmp_path):
    written = task.write_prompts(tmp_path, task.DEFAULT_TRAIN, task.DEFAULT_HELDOUT, task.DEFAULT_SEED)
    for split, path in written.items():
        committed = task.PROMPTS_DIR / f"{split}.jsonl"
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale; rerun examples/arithmetic/task.py"
    train, heldout = read_jsonl(written["train"]), read_jsonl(written["heldout"])
    assert len(train) >= 4000 and len(heldout) >= 500
    sums = lambda rows: {tuple(map(int, r["id"].split("-")[1:3])) for r in rows}  # noqa: E731
    assert not sums(train) & sums(heldout)
    assert len({r["id"] for r in train + heldout}) == len(train) + len(heldout)
    assert all(set(r) == {"id", "prompt", "answer"} for r in train + heldout)
    # the answer is the worked solution (what verifier:solution compares), ending in the sum
    for r in train[:50] + heldout[:50]:
        a, b = map(int, r["id"].split("-")[1:3])
        assert r["answer"] == solutions.worked(task.Problem(a, b))
        assert final_number(r["answer"]) == a + b


def final_number(text: str) -> int:
    return int(text.rsplit("####", 1)[1])


def test_worked_answers_add_digit_by_digit_and_mistakes_carry_through():
    rng = random.Random(0)
    assert solutions.worked(task.Problem(68, 29)) == "8+9=17, 6+2+1=9 #### 97"
    assert solutions.worked(task.Problem(31, 83)) == "1+3=4, 3+8=11 #### 114"
    assert solutions.worked(task.Problem(68, 29), "drop-carry") == "8+9=17, 6+2=8 #### 87"
    assert solutions.worked(task.Problem(31, 83), "extra-carry") == "1+3=4, 3+8+1=12 #### 124"
    for p in task.take("train", 300, seed=11):
        assert final_number(solutions.worked(p)) == p.c
        assert final_number(solutions.plausible_previous(rng, p, wrong=False)) == p.c
        wrong = final_number(solutions.plausible_previous(rng, p, wrong=True))
        assert wrong != p.c and wrong > 0 and abs(wrong - p.c) in (1, 10)


@pytest.mark.skipif(os.environ.get("ARIES_SLOW_TESTS") != "1", reason="slow: rebuilds the bundled model; set ARIES_SLOW_TESTS=1")
def test_bundled_model_reproduces(tmp_path):
    import torch
    import build_model

    out = tmp_path / "model"
    build_model.build(out)
    committed = torch.load(EXAMPLE / "model" / "pytorch_model.bin", map_location="cpu")
    rebuilt = torch.load(out / "pytorch_model.bin", map_location="cpu")
    assert committed.keys() == rebuilt.keys()
    differing = [k for k in committed if not torch.equal(committed[k], rebuilt[k])]
    assert not differing, f"rebuilt weights differ from examples/arithmetic/model in {differing[:5]}"
    assert json.loads((out / "config.json").read_text()) == json.loads((EXAMPLE / "model" / "config.json").read_text())
