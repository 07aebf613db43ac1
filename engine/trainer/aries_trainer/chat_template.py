"""Chat templates rendered with jinja2 the way Hugging Face `transformers` renders them
(sandboxed, trim_blocks, lstrip_blocks), so the trainer sees the same text as TRL and the engine."""

from __future__ import annotations

from functools import lru_cache


def _raise(message: str) -> None:
    raise ValueError(f"chat template: {message}")


@lru_cache(maxsize=8)
def _compile(template: str):
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("conversational prompts need jinja2 (Debian: apt-get install python3-jinja2)") from exc
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def render_chat_template(template: str, messages: list[dict], add_generation_prompt: bool, **special: str) -> str:
    return _compile(template).render(messages=messages, add_generation_prompt=add_generation_prompt, **special)
