"""engine/src/protocol/trainer-fields.ts is what aries_trainer.fields prints from the dataclasses."""

from pathlib import Path

from aries_trainer.fields import render

COMMITTED = Path(__file__).resolve().parents[2] / "src/protocol/trainer-fields.ts"


def test_the_engine_s_field_table_is_current():
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "the trainer's config fields changed: run `PYTHONPATH=engine/trainer .venv/bin/python -m aries_trainer.fields "
        "> engine/src/protocol/trainer-fields.ts`")


def test_it_holds_the_fields_a_user_sets():
    text = render()
    for name in ('"beta"', '"rpo_alpha"', '"loss_type"', '"learning_rate"', '"num_train_epochs"'):
        assert name in text
    assert '"loss_type": {"type": "str", "choices": ["sigmoid", "ipo"]},' in text
