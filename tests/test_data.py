"""Sliding windows of token IDs: the classic GPTDatasetV1 / create_dataloader_v1 behaviour."""

import pytest
import torch

from gptbook.data import GPTDatasetV1, create_dataloader_v1, create_train_val_loaders, train_val_split

TEXT = "In the heart of the city stood the old library, a relic from a bygone era. " * 8


class ClassicGPTDatasetV1(torch.utils.data.Dataset):
    """The chapter-2 implementation, verbatim in spirit: lists of window tensors."""

    def __init__(self, txt, tokenizer, max_length, stride):
        self.input_ids, self.target_ids = [], []
        token_ids = tokenizer.encode(txt, allowed_special={"<|endoftext|>"})
        for i in range(0, len(token_ids) - max_length, stride):
            self.input_ids.append(torch.tensor(token_ids[i:i + max_length]))
            self.target_ids.append(torch.tensor(token_ids[i + 1:i + max_length + 1]))

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]


def test_windows_and_shift_on_known_ids():
    ids = list(range(100, 120))  # 20 tokens
    ds = GPTDatasetV1(ids, None, max_length=4, stride=3)
    assert len(ds) == len(range(0, 20 - 4, 3))
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.tolist() == ids[3 * i:3 * i + 4]
        assert y.tolist() == ids[3 * i + 1:3 * i + 5]  # targets: inputs shifted by one
        assert x.dtype == torch.long and x.shape == (4,)


@pytest.mark.parametrize("max_length,stride", [(4, 1), (4, 4), (8, 5), (16, 16)])
def test_same_windows_as_classic_implementation(tokenizer, max_length, stride):
    ours = GPTDatasetV1(TEXT + "<|endoftext|>" + TEXT, tokenizer, max_length, stride)
    classic = ClassicGPTDatasetV1(TEXT + "<|endoftext|>" + TEXT, tokenizer, max_length, stride)
    assert len(ours) == len(classic)
    for i in range(len(ours)):
        assert torch.equal(ours[i][0], classic[i][0]) and torch.equal(ours[i][1], classic[i][1])
    assert 50256 in ours.token_ids.tolist()  # <|endoftext|> is the special token, not text


def test_text_too_short_says_how_many_tokens(tokenizer):
    text = "Hello, world."  # 4 tokens
    with pytest.raises(ValueError) as info:
        GPTDatasetV1(text, tokenizer, max_length=4, stride=1)
    message = str(info.value)
    assert "4 tokens" in message and "5" in message
    assert len(GPTDatasetV1(text + " Hi", tokenizer, max_length=4, stride=1)) == 1  # 5 tokens: one window


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="max_length"):
        GPTDatasetV1(list(range(10)), None, max_length=0, stride=1)
    with pytest.raises(ValueError, match="stride"):
        GPTDatasetV1(list(range(10)), None, max_length=2, stride=0)


def test_dataloader_batches(tokenizer):
    loader = create_dataloader_v1(TEXT, batch_size=3, max_length=8, stride=8, shuffle=False, tokenizer=tokenizer)
    x, y = next(iter(loader))
    assert x.shape == y.shape == (3, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x[1, 0:1], y[0, -1:])  # stride == max_length: the next window starts after the target
    assert len(loader) == len(loader.dataset) // 3  # drop_last


def test_dataloader_shuffle_is_seeded(tokenizer):
    def first_batch():
        torch.manual_seed(123)
        return next(iter(create_dataloader_v1(TEXT, batch_size=2, max_length=4, stride=4, tokenizer=tokenizer)))[0]

    assert torch.equal(first_batch(), first_batch())


def test_drop_last_with_too_few_windows_is_explained(tokenizer):
    with pytest.raises(ValueError, match="drop_last"):
        create_dataloader_v1("one two three four five six", batch_size=4, max_length=4, stride=4, tokenizer=tokenizer)
    loader = create_dataloader_v1("one two three four five six", batch_size=4, max_length=4, stride=4,
                                  drop_last=False, tokenizer=tokenizer)
    assert len(loader) == 1


def test_train_val_split_is_the_classic_one():
    train, val = train_val_split("abcdefghij", 0.9)
    assert (train, val) == ("abcdefghi", "j")
    with pytest.raises(ValueError):
        train_val_split("abc", 1.0)


def test_train_val_loaders(tokenizer):
    cfg = {"context_length": 8}
    train_loader, val_loader = create_train_val_loaders(TEXT, TEXT[:200], cfg, batch_size=2, tokenizer=tokenizer)
    assert next(iter(train_loader))[0].shape == (2, 8)
    assert not val_loader.drop_last
