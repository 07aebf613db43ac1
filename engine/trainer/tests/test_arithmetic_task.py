"""The bundled arithmetic task (examples/arithmetic): a deterministic generator whose train and
held-out splits never overlap and whose answers are right; and the bundled model it builds.

Run: .venv/bin/python -m pytest engine/trainer/tests/test_arithmetic_task.py
The slow reproduction test (about the build time of the model) runs only with ARIES_SLOW_TESTS=1.
"""

from __future__ import annotations

import json
import os
import random
import re
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


def test_a_copy_slip_miscopies_one_operand_digit_and_works_the_rest_right():
    import slips

    rng = random.Random(3)
    changed_positions = set()
    for p in task.take("train", 400, seed=13):
        slipped = solutions.copy_slip(rng, p)
        m = slips.WORK.fullmatch(slipped)
        assert m, slipped
        a0, b0, s0, a1, b1, carry, s1, result = m.groups()
        copied = (int(a1), int(a0), int(b1), int(b0))
        differing = [i for i, (x, y) in enumerate(zip(copied, solutions.digits(p))) if x != y]
        assert len(differing) == 1, (p, slipped)
        changed_positions.update(differing)
        assert copied[0] >= 1 and copied[2] >= 1  # still two-digit operands
        # the rest of the work is right for the miscopied operands, so only the copy is wrong
        assert int(s0) == copied[1] + copied[3] and bool(carry) == (int(s0) >= 10)
        assert int(s1) == copied[0] + copied[2] + (1 if carry else 0)
        assert int(result) == (copied[0] * 10 + copied[1]) + (copied[2] * 10 + copied[3]) != p.c
        assert slipped == solutions.worked(task.Problem(copied[0] * 10 + copied[1], copied[2] * 10 + copied[3]))
    assert changed_positions == {0, 1, 2, 3}


def test_the_check_and_fix_stage_teaches_refinements_that_repair_copy_slips():
    import build_model
    from aries_trainer.refinement import load_template, render_refinement

    stage = build_model.STAGES[1]
    assert stage.slip == "copy" and not stage.from_scratch and build_model.STAGES[0].from_scratch
    rows = build_model.sft_rows(stage, task.problems("train", seed=5, distinct=False), random.Random(5), load_template())
    assert len(rows) == stage.steps * stage.batch_size
    marker = "\nPrevious answer: "
    refine = [r for r in rows if marker in r["prompt"][0]["content"]]
    assert abs(len(refine) / len(rows) - stage.refine_share) < 0.02
    repairs = 0
    for r in refine:
        question, rest = r["prompt"][0]["content"].split(marker)
        previous = rest.split("\n")[0]
        assert final_number(r["completion"]) == sum(map(int, re.findall(r"\d+", question)))  # the target is always right
        assert r["prompt"][0]["content"] == render_refinement(load_template(), question, previous)
        repairs += previous != r["completion"]
    assert abs(repairs / len(refine) - stage.previous_wrong) < 0.03


STAGE1_COMMIT = "e0f5544"  # the one-stage bundled model: the committed stage 1 of today's build (docs/results.md)


@pytest.mark.skipif(os.environ.get("ARIES_SLOW_TESTS") != "1", reason="slow: rebuilds the bundled model; set ARIES_SLOW_TESTS=1")
def test_bundled_model_reproduces(tmp_path):
    """The check-and-fix stage, run by build_model.py from the committed stage-1 weights, gives the
    committed weights bit for bit (same machine kind, one thread)."""
    import subprocess

    import torch
    import build_model
    from safetensors.torch import load_file

    repo = EXAMPLE.parents[1]
    stage1 = tmp_path / "stage1"
    archive = subprocess.run(["git", "-C", str(repo), "archive", STAGE1_COMMIT, "examples/arithmetic/model"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"no git history with {STAGE1_COMMIT} here: {archive.stderr.decode()[-200:]}")
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    (tmp_path / "examples" / "arithmetic" / "model").rename(stage1)
    out = tmp_path / "model"
    build_model.build(out, stage1)
    committed = load_file(EXAMPLE / "model" / "model.safetensors")
    rebuilt = load_file(out / "model.safetensors")
    assert committed.keys() == rebuilt.keys()
    differing = [k for k in committed if not torch.equal(committed[k], rebuilt[k])]
    assert not differing, f"rebuilt weights differ from examples/arithmetic/model in {differing[:5]}"
    assert json.loads((out / "config.json").read_text()) == json.loads((EXAMPLE / "model" / "config.json").read_text())


def test_stage1_must_be_this_recipes_stage1(tmp_path):
    import build_model
    from aries_trainer.refinement import load_template

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no config.json with an aries_lineage stage"):
        build_model.given_stage1(empty, load_template(), tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"aries_lineage": {"stages": [{"name": "self-refinement-sft", "dataset_sha256": "0" * 64}]}}))
    with pytest.raises(SystemExit, match="not built by this recipe's stage 1"):
        build_model.given_stage1(other, load_template(), tmp_path)
    # the one-stage build's lineage (now stage 1 of the committed model) names exactly these rows
    committed = json.loads((EXAMPLE / "model" / "config.json").read_text())["aries_lineage"]["stages"][0]
    assert build_model.given_stage1_hash(load_template(), tmp_path) == committed["dataset_sha256"]


def test_slips_sorts_answers_by_their_first_wrong_part():
    import slips

    assert slips.kind(68, 29, "8+9=17, 6+2+1=9 #### 97") == "ok"
    assert slips.kind(68, 29, "8+9=17, 6+1+1=8 #### 87") == "copy"
    assert slips.kind(68, 29, "8+9=16, 6+2+1=9 #### 96") == "fact0"
    assert slips.kind(68, 29, "8+9=17, 6+2=8 #### 87") == "carry"
    assert slips.kind(68, 29, "8+9=17, 6+2+1=8 #### 87") == "fact1"
    assert slips.kind(68, 29, "8+9=17, 6+2+1=9 #### 98") == "result"
    assert slips.kind(68, 29, "#### 97") == "format"
    rng = random.Random(1)
    for p in task.take("train", 100, seed=2):
        assert slips.kind(p.a, p.b, solutions.worked(p)) == "ok"
        assert slips.kind(p.a, p.b, solutions.copy_slip(rng, p)) == "copy"


def test_slips_reads_an_evaluation_from_a_project_database(tmp_path):
    import sqlite3

    import slips

    db = tmp_path / "aries.db"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE evaluations (id INTEGER PRIMARY KEY, status TEXT);
        CREATE TABLE prompts (id TEXT PRIMARY KEY, prompt_json TEXT);
        CREATE TABLE trajectories (id INTEGER PRIMARY KEY, evaluation_id INTEGER, prompt_id TEXT, seq INTEGER);
        CREATE TABLE steps (id INTEGER PRIMARY KEY, trajectory_id INTEGER, idx INTEGER, text TEXT);
        INSERT INTO evaluations VALUES (1, 'complete');
        INSERT INTO prompts VALUES ('a', '"Compute 68+29."'), ('b', '[{"role": "user", "content": "What is 12 plus 82?"}]');
        INSERT INTO trajectories VALUES (1, 1, 'a', 0), (2, 1, 'b', 1);
        INSERT INTO steps VALUES (1, 1, 0, '8+9=17, 6+1+1=8 #### 87'), (2, 1, 1, '8+9=17, 6+2+1=9 #### 97'),
                                 (3, 2, 0, '2+2=4, 1+8=9 #### 94'), (4, 2, 1, '2+2=4, 1+8=9 #### 94');
    """)
    con.commit()
    con.close()
    evaluation, by_step, moves, differences = slips.tally(db, None)
    assert evaluation == 1
    assert differences == [1, 0]  # the first prompt's refinement fixed its answer, the second kept a right one
    mean, se = slips.paired(differences)
    assert mean == 0.5 and abs(se - 0.5) < 1e-12
    assert by_step[0] == {"copy": 1, "ok": 1} and by_step[1] == {"ok": 2}
    assert moves == {(1, "wrong", "→ right"): 1, (1, "right", "kept"): 1}
    with pytest.raises(ValueError, match="evaluation 5 has no trajectories"):
        slips.tally(db, 5)
