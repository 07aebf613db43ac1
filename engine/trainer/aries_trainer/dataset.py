"""Reading the ARIES dataset (preference rows) and SFT rows, with errors that name file:line.

Format (docs/dataset-format.md): one JSON object per line.
  preference: {"prompt", "chosen", "rejected", "kind": "direct"|"refine"|"keep", "id", "round", "strategy", ...}
  SFT:        {"prompt", "completion"}  (TRL's prompt-completion format)
`prompt` is a string or a list of {"role", "content"} messages; chosen / rejected / completion are a
string or a one-message assistant list. Unknown columns are kept as provenance and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

Prompt = Union[str, list]
ROLES = ("system", "user", "assistant")
# direct: x -> y_w over y_l; refine: refine(x, y_l) -> y_w over y_l; keep: refine(x, y_w) -> y_w over y_l
KINDS = ("direct", "refine", "keep")
# pair_kinds option -> the row kinds it trains on ("refine" means every row whose prompt is a refinement)
PAIR_KINDS = {"both": KINDS, "direct": ("direct",), "refine": ("refine", "keep")}


class DatasetError(ValueError):
    """A bad row or file; the message names the file, the line and what to do."""


@dataclass
class PreferenceRow:
    prompt: Prompt
    chosen: str
    rejected: str
    kind: str
    id: str
    where: str  # "file:line", for later errors


@dataclass
class SFTRow:
    prompt: Prompt
    completion: str
    id: str
    where: str


@dataclass
class LoadedRows:
    preference: list[PreferenceRow] = field(default_factory=list)
    sft: list[SFTRow] = field(default_factory=list)


def _text(value: str, key: str, where: str) -> str:
    """JSON can spell an unpaired UTF-16 surrogate ("\\ud83d") that no tokenizer can encode: refuse it here, with its line."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DatasetError(f"{where}: \"{key}\" has an unpaired surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}; "
                           "the text must be valid Unicode") from exc
    return value


def _check_messages(value: list, key: str, where: str) -> list[dict]:
    if not value:
        raise DatasetError(f"{where}: \"{key}\" is an empty list; give a string or at least one message")
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise DatasetError(f"{where}: \"{key}\"[{i}] is {type(m).__name__}; each message must be an object with \"role\" and \"content\"")
        for k in ("role", "content"):
            if k not in m:
                raise DatasetError(f"{where}: \"{key}\"[{i}] has no \"{k}\"")
        if m["role"] not in ROLES:
            raise DatasetError(f"{where}: \"{key}\"[{i}].role is {m['role']!r}; use one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise DatasetError(f"{where}: \"{key}\"[{i}].content is {type(m['content']).__name__}; it must be a string")
        _text(m["content"], f"{key}[{i}].content", where)
    return value


def _prompt(obj: dict, where: str) -> Prompt:
    if "prompt" not in obj:
        raise DatasetError(f"{where}: missing key \"prompt\"")
    value = obj["prompt"]
    if isinstance(value, str):
        if not value:
            raise DatasetError(f"{where}: \"prompt\" is empty")
        return _text(value, "prompt", where)
    if isinstance(value, list):
        return _check_messages(value, "prompt", where)
    raise DatasetError(f"{where}: \"prompt\" is {type(value).__name__}; it must be a string or a list of messages")


def _completion(obj: dict, key: str, where: str) -> str:
    if key not in obj:
        raise DatasetError(f"{where}: missing key \"{key}\"")
    value = obj[key]
    if isinstance(value, str):
        return _text(value, key, where)
    if isinstance(value, list):
        msgs = _check_messages(value, key, where)
        if len(msgs) != 1 or msgs[0]["role"] != "assistant":
            raise DatasetError(f"{where}: \"{key}\" must be a string or exactly one assistant message")
        return msgs[0]["content"]
    raise DatasetError(f"{where}: \"{key}\" is {type(value).__name__}; it must be a string or a one-message assistant list")


def parse_row(obj: Any, where: str) -> Union[PreferenceRow, SFTRow]:
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: a row must be a JSON object, got {type(obj).__name__}")
    row_id = str(obj.get("id", where))
    if "completion" in obj and "chosen" not in obj:
        return SFTRow(_prompt(obj, where), _completion(obj, "completion", where), row_id, where)
    if "chosen" not in obj and "rejected" not in obj:
        raise DatasetError(f"{where}: missing key \"chosen\" (a preference row needs prompt, chosen, rejected; an SFT row prompt, completion)")
    kind = obj.get("kind", "direct")
    if kind not in KINDS:
        raise DatasetError(f"{where}: \"kind\" is {kind!r}; use \"direct\", \"refine\" or \"keep\"")
    chosen = _completion(obj, "chosen", where)
    rejected = _completion(obj, "rejected", where)
    return PreferenceRow(_prompt(obj, where), chosen, rejected, kind, row_id, where)


def read_rows(path: Path) -> LoadedRows:
    """Reads a whole JSONL file; the first bad line raises, so nothing half-read is trained on."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file; pass the dataset written by `aries export` (JSONL)")
    out = LoadedRows()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{where}: not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8") from exc
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}") from exc
            except RecursionError as exc:
                raise DatasetError(f"{where}: invalid JSON: nesting is too deep") from exc
            except ValueError as exc:  # e.g. an integer of more than 4300 digits
                raise DatasetError(f"{where}: invalid JSON: {exc}") from exc
            row = parse_row(obj, where)
            (out.preference if isinstance(row, PreferenceRow) else out.sft).append(row)
    if not out.preference and not out.sft:
        raise DatasetError(f"{path}: the file has no rows")
    return out


def read_preference_rows(path: str, command: str) -> LoadedRows:
    """read_rows, refusing a file without preference rows (what `dpo` and `rm` train on)."""
    loaded = read_rows(Path(path))
    if not loaded.preference:
        raise DatasetError(f"{path}: no preference rows (prompt, chosen, rejected); `{command}` needs the ARIES dataset from `aries export`")
    return loaded
