"""Copy drills (gptbook.training.copy_drills): rows that only copying from the context predicts, mixed into training."""

import pytest
import torch

from gptbook.training.copy_drills import ECHO_TRIPLES, SEGMENT_LENGTH, CopyDrills, drill_row
from gptbook.tokenizer import EOT_ID, get_tokenizer
from gptbook.training import TrainConfig

VOCAB = list(range(1000, 1400))


def split_drills(row):
    """The drills of a row: the pieces between <|endoftext|> tokens."""
    pieces, current = [], None
    for t in row.tolist():
        if t == EOT_ID:
            if current:
                pieces.append(current)
            current = []
        elif current is not None:
            current.append(t)
    return pieces[:-1] + ([current] if current else [])  # the last piece may be cut off by the row's end


def test_repeated_sequences_show_the_same_distinct_tokens_twice():
    row = drill_row(2000, torch.tensor(VOCAB), echo=0.0, by_id=999, generator=torch.Generator().manual_seed(1))
    assert row.shape == (2000,) and row[0] == EOT_ID
    drills = split_drills(row)[:-1]  # whole drills only
    assert len(drills) > 10
    for d in drills:
        n = len(d) // 2
        assert len(d) == 2 * n and SEGMENT_LENGTH[0] <= n <= SEGMENT_LENGTH[1]
        assert d[:n] == d[n:] and len(set(d[:n])) == n  # A B C ... A B C, no token twice in a copy
        assert set(d) <= set(VOCAB)


def test_echoes_repeat_the_token_before_by():
    by = get_tokenizer().encode(" by")[0]
    row = drill_row(600, torch.tensor(VOCAB), echo=1.0, by_id=by, generator=torch.Generator().manual_seed(2))
    for d in split_drills(row)[:-1]:
        assert len(d) % 3 == 0 and len(d) // 3 <= ECHO_TRIPLES
        for x, b, y in zip(d[0::3], d[1::3], d[2::3]):
            assert b == by and x == y


def test_mix_replaces_about_the_share_and_is_reproducible():
    drills = CopyDrills(VOCAB + [EOT_ID], share=0.25, echo=0.3, seed=7)
    assert EOT_ID not in drills.vocabulary.tolist()
    inputs = torch.full((64, 40), 5)
    targets = torch.full((64, 40), 6)
    a_in, a_tg = drills.mix(inputs, targets, index=3)
    b_in, b_tg = drills.mix(inputs, targets, index=3)
    assert torch.equal(a_in, b_in) and torch.equal(a_tg, b_tg)  # a resumed run draws the very same rows
    assert (inputs == 5).all() and (targets == 6).all()  # the batch given is not changed in place
    changed = (a_in != 5).any(dim=1)
    assert 8 <= int(changed.sum()) <= 26  # about a quarter of 64 rows
    assert torch.equal(a_in[changed][:, 1:], a_tg[changed][:, :-1])  # targets are the inputs shifted by one
    assert torch.equal(a_in[~changed], inputs[~changed]) and torch.equal(a_tg[~changed], targets[~changed])
    c_in, _ = drills.mix(inputs, targets, index=4)
    assert not torch.equal(a_in, c_in)  # another batch, other drills
    none_in, _ = CopyDrills(VOCAB, share=0.0).mix(inputs, targets, index=3)
    assert torch.equal(none_in, inputs)


def test_bad_settings_say_what_to_do():
    with pytest.raises(ValueError, match="between 0 and 1"):
        CopyDrills(VOCAB, share=1.5)
    with pytest.raises(ValueError, match="uses only 5"):
        CopyDrills(range(5))
    with pytest.raises(ValueError, match="copy_drills must be a probability"):
        TrainConfig(copy_drills=-0.1)
    with pytest.raises(ValueError, match="copy_echo must be a probability"):
        TrainConfig(copy_echo=2)
