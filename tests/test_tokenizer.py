"""Text <-> token IDs: the GPT-2 encoding, offline, exactly as tiktoken's."""

import hashlib
import inspect
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import tiktoken
import torch

from gptbook import get_tokenizer, text_to_token_ids, token_ids_to_text
from gptbook import tokenizer as tokenizer_module

BOOK_TEXT = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
BOOK_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114, 286, 617, 34680, 27271, 13]


def test_is_a_tiktoken_encoding_with_gpt2_vocabulary(tokenizer):
    assert isinstance(tokenizer, tiktoken.Encoding)
    assert tokenizer.n_vocab == 50257
    assert tokenizer.eot_token == 50256


def test_hello_i_am(tokenizer):
    ids = text_to_token_ids("Hello, I am", tokenizer)
    assert ids.dtype == torch.long and ids.shape == (1, 4)
    assert ids.tolist() == [[15496, 11, 314, 716]]


def test_book_example_with_endoftext_and_unknown_word_round_trips(tokenizer):
    ids = text_to_token_ids(BOOK_TEXT, tokenizer)
    assert ids[0].tolist() == BOOK_IDS
    assert token_ids_to_text(ids, tokenizer) == BOOK_TEXT


@pytest.mark.parametrize("text", ["naïve café, Ångström", "日本語のテキスト 中文", "emoji 🤖🚀👩‍💻", "tabs\tand\nnewlines  ", ""])
def test_any_unicode_text_round_trips(tokenizer, text):
    assert token_ids_to_text(text_to_token_ids(text, tokenizer), tokenizer) == text


def test_decode_accepts_1d_tensor_2d_batch_of_one_and_list(tokenizer):
    ids = text_to_token_ids("Hello, I am", tokenizer)
    assert token_ids_to_text(ids, tokenizer) == token_ids_to_text(ids[0], tokenizer) == token_ids_to_text(ids[0].tolist(), tokenizer)


def test_decode_refuses_a_batch_of_two_with_a_clear_message(tokenizer):
    with pytest.raises(ValueError, match="decode each row"):
        token_ids_to_text(torch.zeros(2, 3, dtype=torch.long), tokenizer)


def test_vocabulary_hashes_are_the_ones_tiktoken_publishes():
    published = inspect.getsource(__import__("tiktoken_ext.openai_public", fromlist=["gpt2"]).gpt2)
    assert tokenizer_module.VOCAB_BPE_SHA256 in published
    assert tokenizer_module.ENCODER_JSON_SHA256 in published
    vocab, encoder = tokenizer_module._vocabulary_files()
    assert hashlib.sha256(vocab.read_bytes()).hexdigest() == tokenizer_module.VOCAB_BPE_SHA256
    assert hashlib.sha256(encoder.read_bytes()).hexdigest() == tokenizer_module.ENCODER_JSON_SHA256


def test_builds_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    get_tokenizer.cache_clear()
    try:
        assert get_tokenizer().encode("Hello, I am") == [15496, 11, 314, 716]
    finally:
        get_tokenizer.cache_clear()


def test_tampered_vocabulary_is_refused(tmp_path, monkeypatch):
    vocab, encoder = tokenizer_module._vocabulary_files()
    bad = tmp_path / "vocab.bpe"
    bad.write_bytes(vocab.read_bytes() + b"x")
    monkeypatch.setattr(tokenizer_module, "_vocabulary_files", lambda: (bad, encoder))
    get_tokenizer.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="does not match GPT-2's published vocabulary"):
            get_tokenizer()
    finally:
        get_tokenizer.cache_clear()


# -- randomised round trips, partial characters, the pattern ---------------------------------------



@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))  # any Unicode but lone surrogates
def test_arbitrary_unicode_round_trips(tokenizer, text):
    ids = tokenizer.encode(text, disallowed_special=())
    assert all(0 <= i < 50257 for i in ids)
    assert tokenizer.decode(ids) == text
    assert token_ids_to_text(torch.tensor(ids, dtype=torch.long), tokenizer) == text


def test_a_character_split_across_tokens_decodes_whole_once_complete(tokenizer):
    """Streaming decodes the tokens so far: a half character shows as U+FFFD until its last byte comes."""
    text = "robot 🤖!"
    ids = tokenizer.encode(text)
    pieces = [tokenizer.decode_single_token_bytes(i) for i in ids]
    split = next(k for k, piece in enumerate(pieces) if piece and not _is_complete_utf8(b"".join(pieces[:k + 1])))
    partial = tokenizer.decode(ids[:split + 1])
    assert partial.endswith("\ufffd") and "🤖" not in partial  # not an error, a visible placeholder
    assert tokenizer.decode(ids) == text  # decoding the whole list again joins the character
    streamed = [tokenizer.decode(ids[:k]) for k in range(1, len(ids) + 1)]
    assert streamed[-1] == text and streamed[-1].startswith(streamed[split - 1].rstrip("\ufffd"))


def _is_complete_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_pre_tokenisation_pattern_is_tiktokens_gpt2_pattern(tokenizer):
    from tiktoken_ext import openai_public

    from gptbook.tokenizer import GPT2_PATTERN

    if not hasattr(openai_public, "r50k_pat_str"):  # tiktoken 0.7 writes an older, equivalent form inline
        pytest.skip("this tiktoken has no r50k_pat_str to compare with; the encoding tests still cover the pattern")
    assert GPT2_PATTERN == openai_public.r50k_pat_str
    assert tokenizer._pat_str == openai_public.r50k_pat_str


def test_the_vocabulary_is_read_as_tiktoken_reads_it():
    """gptbook parses the two vocabulary files itself (tiktoken 0.7's loader needs ``blobfile`` for a local
    file); where this tiktoken can read them, both give the same ranks."""
    vocab_bpe, encoder_json = tokenizer_module._vocabulary_files()
    ours = tokenizer_module._mergeable_ranks(vocab_bpe.read_bytes(), encoder_json.read_bytes())
    assert len(ours) == 50256 and ours[b"Hello"] == 15496 and ours[bytes([0xf0, 0x9f])] == 8582
    try:
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks

        theirs = data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(encoder_json))
    except ImportError:  # an older tiktoken without blobfile
        pytest.skip("this tiktoken cannot read local vocabulary files without blobfile")
    assert ours == theirs


def test_vocabulary_files_that_disagree_are_refused():
    vocab_bpe, encoder_json = tokenizer_module._vocabulary_files()
    merges = vocab_bpe.read_bytes().split(b"\n")
    swapped = b"\n".join([merges[0], merges[2], merges[1], *merges[3:]])  # two merge rules in the wrong order
    with pytest.raises(RuntimeError, match="disagree"):
        tokenizer_module._mergeable_ranks(swapped, encoder_json.read_bytes())
