"""The refinement prompt: how a question x and a previous answer become the next prompt.

The template lives in engine/templates/refinement.json, the one file the engine, this trainer
and the bundled-model builder all read. Two forms, as in engine/src/refinement/template.ts:
"text" (the default), one prompt from {question} and {previous} replaced in a single pass (a
question that itself contains "{previous}" is left alone); and "chat", the conversation continued:
x, the previous answer as the assistant's turn, then the "instruction" as a new user turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "templates" / "refinement.json"
_PLACEHOLDER = re.compile(r"\{(question|previous)\}")


@dataclass(frozen=True)
class ChatRefinement:
    """The "chat" form: refine(x, y) = x, then y as the assistant, then this user turn."""

    instruction: str


Template = Union[str, ChatRefinement]


def load_template(path: Optional[Path] = None) -> Template:
    p = path or DEFAULT_TEMPLATE_PATH
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: cannot read the refinement template ({exc})") from exc
    form = data.get("format", "text") if isinstance(data, dict) else "text"
    if form == "chat":
        instruction = data.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"{p}: a \"chat\" template needs \"instruction\": the user turn that asks for a better answer")
        return ChatRefinement(instruction)
    if form != "text":
        raise ValueError(f"{p}: \"format\" is {json.dumps(form)}; use \"text\" or \"chat\"")
    template = data.get("template") if isinstance(data, dict) else None
    if not isinstance(template, str) or "{question}" not in template or "{previous}" not in template:
        raise ValueError(f"{p}: \"template\" must be a string containing {{question}} and {{previous}}")
    return template


def render_refinement(template: str, question: str, previous: str) -> str:
    values = {"question": question, "previous": previous}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
