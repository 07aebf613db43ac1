"""Fuzzed dataset rows for `python -m aries_trainer dpo` (docs/reliability.md, bad input).

Each case mutates one line of a valid ARIES dataset (random bytes, invalid UTF-8, a cut line, deep
nesting, huge numbers, lone surrogates, wrong types, non-objects) and runs the CLI entry point in
process. A rejected file must give exit 2, one {"type": "error"} line on stdout naming file:line,
no traceback, and no output folder. Seeded: ARIES_FUZZ_SEED, ARIES_FUZZ_SCALE.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TRAINER_DIR
from aries_trainer import cli

SEED = int(os.environ.get("ARIES_FUZZ_SEED", "424242"))
SCALE = int(os.environ.get("ARIES_FUZZ_SCALE", "1"))

ODD = [None, True, 0, -1, 1.5, "", "x" * 5000, [], [1], ["a"], {}, {"x": 1}, [{"role": "bot", "content": "x"}],
       [{"role": "user"}], [{"role": "user", "content": 5}], [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]]
FIELDS = ["prompt", "chosen", "rejected", "kind", "completion"]
BAD_UTF8 = [b"\xc3\x28", b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82"]


def base_rows(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(8):
        a, b = rng.randrange(20), rng.randrange(20)
        q = f"What is {a}+{b}?"
        if i % 2:
            rows.append({"id": f"d{i}", "kind": "direct", "prompt": [{"role": "user", "content": q}],
                         "chosen": f"#### {a + b}", "rejected": f"#### {a + b + 1}"})
        else:
            rows.append({"id": f"r{i}", "kind": "refine", "prompt": q + "\nPrevious answer: wrong",
                         "chosen": [{"role": "assistant", "content": f"#### {a + b}"}],
                         "rejected": [{"role": "assistant", "content": f"#### {a + b + 1}"}]})
    return rows


def mutate(rng: random.Random, rows: list[dict]) -> tuple[bytes, int, str]:
    """The file's bytes, the 1-based line that is bad, and what was done to it."""
    lines = [json.dumps(r).encode() for r in rows]
    i = rng.randrange(len(lines))
    kind = rng.choice(["random-bytes", "invalid-utf8", "cut", "deep", "huge-int", "surrogate", "nan",
                       "wrong-type", "wrong-type", "wrong-type", "not-object"])
    if kind == "random-bytes":
        lines[i] = bytes(rng.choice([b for b in range(256) if b != 0x0A]) for _ in range(1 + rng.randrange(200)))
    elif kind == "invalid-utf8":
        at = 2 + rng.randrange(max(1, len(lines[i]) - 4))
        lines[i] = lines[i][:at] + rng.choice(BAD_UTF8) + lines[i][at:]
    elif kind == "cut":
        lines[i] = lines[i][: 1 + rng.randrange(len(lines[i]) - 2)]
    elif kind == "deep":
        depth = rng.choice([1000, 10_000, 100_000])
        lines[i] = b'{"prompt": ' + b"[" * depth + b'"x"' + b"]" * depth + b', "chosen": "a", "rejected": "b"}'
    elif kind == "huge-int":
        lines[i] = b'{"prompt": "q", "chosen": "a", "rejected": "b", "round": ' + b"9" * 5000 + b"}"
    elif kind == "surrogate":
        key = rng.choice(["prompt", "chosen", "rejected"])
        row = dict(rows[i], **{key: "half a pair: \\ud83d here"})
        lines[i] = json.dumps(row).replace("\\\\ud83d", "\\ud83d").encode()
    elif kind == "nan":
        lines[i] = json.dumps(dict(rows[i], prompt=float("nan"))).encode()
    elif kind == "wrong-type":
        row = dict(rows[i])
        row[rng.choice(FIELDS)] = rng.choice(ODD)
        lines[i] = json.dumps(row).encode()
    else:
        lines[i] = json.dumps(rng.choice([1, "text", None, [rows[i]], True])).encode()
    return b"".join(line + b"\n" for line in lines), i + 1, kind


def run_in_process(capsys, data: Path, out: Path) -> tuple[int, list[str], str]:
    code = cli.main(["dpo", "--model_name_or_path", str(data.parent / "no-model-here"), "--dataset_path", str(data),
                     "--output_dir", str(out)])
    captured = capsys.readouterr()
    return code, [line for line in captured.out.splitlines() if line.strip()], captured.err


def test_fuzzed_dataset_rows_are_rejected_with_file_and_line(tmp_path, capsys):
    rng = random.Random(SEED)
    counts = {"cases": 0, "rejected": 0, "valid": 0}
    kinds: dict[str, int] = {}
    for n in range(300 * SCALE):
        body, line, kind = mutate(rng, base_rows(rng))
        data = tmp_path / f"case-{n % 5}.jsonl"
        data.write_bytes(body)
        out = tmp_path / f"out-{n}"
        code, stdout, stderr = run_in_process(capsys, data, out)
        label = f"case {n} ({kind}, line {line}, seed {SEED})"
        counts["cases"] += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        assert code == 2, f"{label}: exit {code}: {stderr[-2000:]}"
        assert "Traceback" not in stderr, f"{label}: {stderr[-2000:]}"
        assert len(stdout) == 1, f"{label}: {stdout}"
        error = json.loads(stdout[0])
        assert error["type"] == "error" and error["exit_code"] == 2
        assert not out.exists(), f"{label}: an output folder was written"
        if "no-model-here" in error["message"]:
            counts["valid"] += 1  # the rows were still valid: the (missing) model is the first problem
            continue
        assert error["message"].startswith(f"{data}:{line}: "), f"{label}: {error['message']}"
        counts["rejected"] += 1
    print(f"trainer dataset fuzz: {counts} by kind {kinds}")
    assert counts["rejected"] > counts["cases"] * 0.7


@pytest.mark.parametrize("kind", ["deep", "surrogate", "huge-int"])
def test_cli_process_exits_2_and_writes_nothing(tiny_model, tmp_path, kind):
    rng = random.Random(SEED)
    rows = base_rows(rng)
    body, line, got = b"", 0, ""
    while got != kind:
        body, line, got = mutate(rng, rows)
    data = tmp_path / "bad.jsonl"
    data.write_bytes(body)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(TRAINER_DIR)}
    proc = subprocess.run([sys.executable, "-m", "aries_trainer", "dpo", "--model_name_or_path", str(tiny_model),
                           "--dataset_path", str(data), "--output_dir", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["message"].startswith(f"{data}:{line}: ")
    assert not out.exists() and not any(p.name.startswith(".out.tmp") for p in tmp_path.iterdir())
