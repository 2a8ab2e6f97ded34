"""The corpus probes measure skills on held-out stories, at the right positions."""

import pytest
import torch
import torch.nn as nn

from gptbook.training.corpus import DAYS, NUMBERS, STORY_SEPARATOR, load_corpus
from gptbook.training.probes import (PROBES, corpus_token_ids, format_probes, induction_accuracy, predict_at_sites,
                            probe_sites, repeated_sequences, run_probes)
from gptbook.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def sites():
    return probe_sites(12)


def test_every_probe_has_sites_in_validation_stories(sites):
    token_lists, found = sites
    assert len(token_lists) == 12
    val_stories = load_corpus("val").split(STORY_SEPARATOR)[:12]
    train = load_corpus("train")
    assert not any(story in train for story in val_stories)  # held out
    for probe in PROBES:
        assert sum(site.probe == probe for site in found) >= 5, probe


def test_sites_hold_the_token_the_rule_determines(sites):
    token_lists, found = sites
    tok = get_tokenizer()
    for site in found:
        assert token_lists[site.story][site.position] == site.target
        text_before = tok.decode(token_lists[site.story][1:site.position])
        answer = site.answer.strip()
        if site.probe == "counting":  # "..., three," -> " four"
            previous = text_before.rstrip(",").split()[-1]
            assert NUMBERS.index(answer) == NUMBERS.index(previous) + 1
        elif site.probe == "weekday_order":  # the paragraph before started with the previous day
            assert text_before.endswith("\n\nOn")
            previous_day = text_before[:-4].rsplit("\n\nOn ", 1)[1].split(",")[0]
            assert DAYS.index(answer) == (DAYS.index(previous_day) + 1) % 7
        elif site.probe == "count_recall":
            counted = text_before.rsplit("counted them: ", 1)[1].split(".")[0].split(", ")[-1]
            assert answer == counted
        else:  # the name was introduced earlier in the story
            assert answer in text_before.split("\n\n")[1] or tok.decode([site.target]).strip() in text_before


class PreviousToken(nn.Module):
    """A fake language model whose top prediction at every position is the token it just read."""

    def __init__(self, context_length: int) -> None:
        super().__init__()
        self.cfg = {"context_length": context_length}
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        return nn.functional.one_hot(idx, 50257).float() + 0 * self.dummy


@pytest.mark.parametrize("context_length", [256, 64])
@pytest.mark.slow
def test_each_site_is_predicted_from_the_position_before_it(sites, context_length):
    token_lists, found = sites
    predictions = predict_at_sites(PreviousToken(context_length), token_lists, found)
    expected = torch.tensor([token_lists[s.story][s.position - 1] for s in found])
    assert torch.equal(predictions, expected)


def test_run_probes_returns_an_accuracy_per_probe_and_keeps_the_mode():
    model = PreviousToken(128).train()
    accuracies, found, predictions = run_probes(model, n_stories=4, return_sites=True)
    assert list(accuracies) == list(PROBES)
    assert all(0.0 <= value <= 1.0 for value in accuracies.values())
    assert model.training
    assert len(found) == len(predictions)
    assert format_probes({"counting": 0.5, "name_copying": 1.0}) == "counting 50% | name_copying 100%"


class Copier(nn.Module):
    """A perfect induction model: predicts the token that followed the last earlier occurrence of the current one."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = {"context_length": 256}
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, 50257)
        logits[..., 50256] = 0.5  # with nothing to copy: <|endoftext|>, which the sequences never hold
        for b in range(idx.shape[0]):
            seen: dict[int, int] = {}
            for t in range(idx.shape[1]):
                token = int(idx[b, t])
                if token in seen:
                    logits[b, t, int(idx[b, seen[token] + 1])] = 1.0
                seen[token] = t
        return logits + 0 * self.dummy


def test_induction_probe_rewards_copying_from_the_first_copy_only():
    rows = repeated_sequences(4, 10)
    assert rows.shape == (4, 21)
    assert torch.equal(rows[:, 1:11], rows[:, 11:])  # the same sequence twice
    assert set(rows[:, 1:].flatten().tolist()) <= set(corpus_token_ids())  # tokens the stories use
    assert all(len(set(row[1:11].tolist())) == 10 for row in rows)  # no token twice in one copy
    assert torch.equal(rows, repeated_sequences(4, 10))  # the same on every call
    scores = induction_accuracy(Copier(), n=4, length=10)
    assert scores == {"first": 0.0, "second": 1.0}
    assert induction_accuracy(PreviousToken(64), n=4, length=10) == {"first": 0.0, "second": 0.0}


def test_bad_story_count_is_a_clear_error():
    with pytest.raises(ValueError, match="n_stories"):
        probe_sites(0)


def test_a_trainer_run_on_the_stories_records_every_probe_induction_and_head_scores_at_each_evaluation(tmp_path):
    from gptbook.training import TrainConfig, Trainer

    config = TrainConfig(model_overrides={"emb_dim": 32, "n_layers": 1, "n_heads": 2, "context_length": 32},
                         out_dir=str(tmp_path / "run"), batch_size=2, max_length=32, max_steps=4, eval_every=2,
                         eval_batches=1, save_every=100, sample_tokens=3, probe_stories=2)
    history = Trainer(config, log=lambda message: None).fit()
    assert [row["step"] for row in history["val_probes"]] == history["val_steps"] == [2, 4]
    for row in history["val_probes"]:
        assert set(row) == {"step", *PROBES, "induction"}
        assert all(0.0 <= row[name] <= 1.0 for name in (*PROBES, "induction"))
    # and every head's previous-token and induction score (layers x heads), measured on 15 tokens shown twice
    assert [row["step"] for row in history["val_heads"]] == [2, 4]
    for row in history["val_heads"]:
        assert set(row) == {"step", "previous_token", "induction"}
        for role in ("previous_token", "induction"):
            assert len(row[role]) == 1 and len(row[role][0]) == 2  # 1 layer, 2 heads
            assert all(0.0 <= x <= 1.0 for x in row[role][0])
