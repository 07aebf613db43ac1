import math

import torch

from aries_trainer.losses import collate, nll_per_row, preference_loss, sequence_logps


def test_dpo_matches_hand_computed_value():
    # policy/ref log-probs chosen: -2 / -3, rejected: -5 / -4; beta 0.1
    # logits = (-2 - -3) - (-5 - -4) = 1 - (-1) = 2 ; loss = -log(sigmoid(0.2))
    out = preference_loss(torch.tensor([-2.0]), torch.tensor([-5.0]), torch.tensor([-3.0]), torch.tensor([-4.0]), beta=0.1)
    expected = -math.log(1 / (1 + math.exp(-0.2)))
    assert abs(out.losses.item() - expected) < 1e-6
    assert abs(out.chosen_rewards.item() - 0.1) < 1e-6
    assert abs(out.rejected_rewards.item() - (-0.1)) < 1e-6


def test_ipo_is_squared_distance_from_half_inverse_beta():
    out = preference_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.0]), torch.tensor([-1.0]), beta=0.5, loss_type="ipo")
    assert abs(out.losses.item() - (1.0 - 1.0) ** 2) < 1e-9  # gap 1 == 1/(2*0.5)
    out = preference_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), beta=0.25, loss_type="ipo")
    assert abs(out.losses.item() - 4.0) < 1e-9


def test_label_smoothing_mixes_both_directions():
    out = preference_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), beta=0.1, label_smoothing=0.2)
    assert abs(out.losses.item() - math.log(2)) < 1e-6


def _logps(logits, ids, prompt_len):
    batch = collate([(ids[:prompt_len], ids[prompt_len:])], pad_id=0)
    return sequence_logps(logits, batch)


def test_only_completion_tokens_count():
    torch.manual_seed(0)
    ids = [5, 6, 7, 8, 9, 10]  # prompt 5 6 7 | completion 8 9 10
    logits = torch.randn(1, 6, 12)
    base, count = _logps(logits, ids, 3)
    assert count.item() == 3
    # Change prompt tokens (except the last, which the first completion token is predicted from)
    # and the logits that predict prompt tokens: the completion sum must not move.
    changed_ids = [1, 2, 7, 8, 9, 10]
    changed_logits = logits.clone()
    changed_logits[0, 0:2] = torch.randn(2, 12)
    same, _ = _logps(changed_logits, changed_ids, 3)
    assert torch.allclose(base, same)
    # Changing a completion token does move it (so this test can fail).
    other, _ = _logps(logits, [5, 6, 7, 8, 3, 10], 3)
    assert not torch.allclose(base, other)


def test_sum_equals_manual_gather():
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 7)
    ids = [1, 2, 3, 4]
    got, _ = _logps(logits, ids, 2)
    lp = torch.log_softmax(logits, -1)
    manual = lp[0, 1, 3] + lp[0, 2, 4]
    assert torch.allclose(got, manual.unsqueeze(0))


def test_padding_is_ignored():
    torch.manual_seed(2)
    seqs = [([1, 2], [3, 4]), ([1], [3])]
    batch = collate(seqs, pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4], [1, 3, 0, 0]]
    assert batch.completion_mask.tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]
    logits = torch.randn(2, 4, 6)
    s, n = sequence_logps(logits, batch)
    assert n.tolist() == [2, 1]
    assert torch.allclose(nll_per_row(s, n), -s / n)
