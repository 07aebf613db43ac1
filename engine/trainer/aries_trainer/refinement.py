"""The refinement prompt: how a question x and a previous answer become the next prompt.

The template text lives in engine/templates/refinement.json, the one file the engine, this
trainer and the bundled-model builder all read. Placeholders are replaced in a single pass, so a
question that itself contains "{previous}" is left alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "templates" / "refinement.json"
_PLACEHOLDER = re.compile(r"\{(question|previous)\}")


def load_template(path: Optional[Path] = None) -> str:
    p = path or DEFAULT_TEMPLATE_PATH
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: cannot read the refinement template ({exc})") from exc
    template = data.get("template") if isinstance(data, dict) else None
    if not isinstance(template, str) or "{question}" not in template or "{previous}" not in template:
        raise ValueError(f"{p}: \"template\" must be a string containing {{question}} and {{previous}}")
    return template


def render_refinement(template: str, question: str, previous: str) -> str:
    values = {"question": question, "previous": previous}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
