"""The bundled corpus: generated, deterministic, consistent, split; loading text files and URLs."""

import hashlib
import http.server
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from gptbook.training.corpus import (
    DAYS, NUMBERS, STORY_SEPARATOR, corpus_stats, generate_stories, load_corpus, load_text, load_text_file,
    load_text_url, unigram_entropy,
)


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.slow
def test_corpus_is_deterministic_across_processes():
    here = sha(load_corpus("all"))
    code = "import hashlib; from gptbook.training.corpus import load_corpus; print(hashlib.sha256(load_corpus('all').encode()).hexdigest())"
    for hash_seed in ("0", "12345"):  # Python's string hashing must not matter
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                             cwd=str(Path(__file__).resolve().parents[1]))
        assert out.stdout.strip() == here


def test_splits():
    train, val, everything = load_corpus("train"), load_corpus("val"), load_corpus("all")
    assert everything == train + STORY_SEPARATOR + val
    assert 1_000_000 <= len(everything.encode()) <= 8_000_000  # a few MB at most
    assert 0.05 < len(val) / len(everything) < 0.2
    train_stories = set(train.split(STORY_SEPARATOR))
    val_stories = val.split(STORY_SEPARATOR)
    assert len(val_stories) > 50
    assert not any(story in train_stories for story in val_stories)  # different stories, not a memory test
    with pytest.raises(ValueError, match="split"):
        load_corpus("test")


def test_other_sizes_and_seeds():
    small = load_corpus("all", n_stories=10, seed=1)
    assert small.count(STORY_SEPARATOR) == 9
    assert small != load_corpus("all", n_stories=10, seed=2)


STORIES = generate_stories(300, seed=99)


def test_every_story_has_a_title_paragraphs_and_an_ending():
    for story in STORIES:
        title, rest = story.split("\n\n", 1)
        assert title and title[0].isupper() and not title.endswith(".")
        assert rest.startswith("Once upon a time")
        assert story.endswith("The end.\n")
        assert story.count('"') % 2 == 0  # quotes are balanced


def test_counting_and_sums_are_right():
    counted = added = shared = 0
    for story in STORIES:
        for seq, n in re.findall(r"counted them: ([a-z, ]+)\. (?:There were|\"I have) (\w+)", story):
            words = seq.split(", ")
            assert words == list(NUMBERS[1:len(words) + 1])
            assert n == words[-1]
            counted += 1
        for x, y, z in re.findall(r"gave \w+ (\w+) \w+\. Then \w+ gave \w+ (\w+) more\. Now \w+ had (\w+)", story):
            assert NUMBERS.index(x) + NUMBERS.index(y) == NUMBERS.index(z)
            added += 1
        for x, y, z in re.findall(r"had (\w+) \w+\. \w+ shared (\w+) of them with \w+\. Now \w+ had (\w+)", story):
            assert NUMBERS.index(x) - NUMBERS.index(y) == NUMBERS.index(z)
            shared += 1
    assert counted > 50 and added > 20 and shared > 20


def test_days_follow_the_week():
    for story in STORIES:
        days = re.findall(r"^On (\w+)", story, flags=re.M)  # each paragraph after the introduction
        for a, b in zip(days, days[1:]):
            assert DAYS.index(b) == (DAYS.index(a) + 1) % 7
        # every day's paragraph ends by naming its day, so the next day's "On" follows it closely
        endings = re.findall(r"It was a \w+ (\w+)\.\n\nOn (\w+)", story)
        assert len(endings) == len(days) - 1
        assert all(DAYS.index(b) == (DAYS.index(a) + 1) % 7 for a, b in endings)


def test_secret_codes_are_said_three_times_and_new_in_every_story():
    codes = []
    for story in STORIES:
        days = len(re.findall(r"^On \w+", story, flags=re.M))
        found = re.findall(r"made up a secret code: ([a-z ]+)\. \w+ said it back: ([a-z ]+)\. "
                           r"Then they said it together: ([a-z ]+)\.", story)
        assert len(found) == days  # one code a day
        for first, second, third in found:
            assert first == second == third
            words = first.split()
            assert 6 <= len(words) <= 12 and len(set(words)) == len(words)
            codes.append(first)
    assert len(set(codes)) == len(codes)  # never the same code twice: it can only be copied, not remembered


def test_pet_names_are_made_up_and_several_tokens_long(tokenizer):
    names = [re.search(r"called (\w+)\.", story).group(1) for story in STORIES]
    assert len(set(names)) > 0.8 * len(names)  # new in (nearly) every story
    multi = sum(len(tokenizer.encode(" " + name)) > 1 for name in names)
    assert multi > 0.9 * len(names)  # after the first token, only copying predicts the rest
    assert sum(story.count(name) >= 2 for story, name in zip(STORIES, names)) > 0.5 * len(names)  # it comes back


def test_counting_is_the_commonest_scene():
    scenes = {"count": r"counted them:", "share": r"gave \w+ \w+ \w+\. Then|shared \w+ of them",
              "pet": r"came home, \w+ the", "help": r"can you help me"}
    counts = {k: sum(len(re.findall(p, s)) for s in STORIES) for k, p in scenes.items()}
    assert counts["count"] > 1.5 * max(counts["share"], counts["pet"], counts["help"]), counts


def test_lost_things_are_found_where_they_were_lost():
    arcs = 0
    for story in STORIES:
        lost = re.search(r"At the (\w+), they[^\n]*could not find \w+ (\w+) ([\w -]+?)\.", story)
        if lost:
            place, color, item = lost.groups()
            found = re.search(r"went back to the (\w+)\.[^\n]*?The (\w+) ([\w -]+?) was", story)
            assert found and found.groups() == (place, color, item)
            assert story.split("\n\n")[0] == f"{story.split()[0]} and the {color.title()} {item.title()}"
            arcs += 1
    assert arcs > 50


def test_unigram_entropy():
    assert unigram_entropy([7, 7, 7]) == pytest.approx(0.0)
    assert unigram_entropy([1, 2, 3, 4]) == pytest.approx(math.log(4))
    ids = torch.randint(0, 50, (1000,), generator=torch.Generator().manual_seed(0))
    assert unigram_entropy(ids) == pytest.approx(unigram_entropy(ids.tolist()))
    with pytest.raises(ValueError):
        unigram_entropy([])


def test_corpus_stats(tokenizer):
    stats = corpus_stats(tokenizer)
    assert stats["train_tokens"] > 300_000 and stats["val_tokens"] > 30_000
    assert stats["distinct_tokens"] < 2500  # a small vocabulary (made-up names and codes included)
    assert 3.0 < stats["unigram_entropy"] < math.log(stats["distinct_tokens"])


def test_load_text_file(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Grüße, café – “quotes”.", encoding="utf-8")
    assert load_text_file(good) == "Grüße, café – “quotes”."
    assert load_text(str(good)) == load_text_file(good)
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfhello")
    assert load_text_file(bom) == "hello"

    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8.*0xe9.*position 3"):
        load_text_file(latin)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(ValueError, match="binary"):
        load_text_file(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        load_text_file(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_text_file(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError):
        load_text_file(tmp_path)


def test_load_bundled_by_name():
    assert load_text() == load_corpus("train")
    assert load_text("bundled", split="val") == load_corpus("val")


@pytest.fixture
def local_server(tmp_path):
    (tmp_path / "story.txt").write_text("A story served locally. Ünïcode.", encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_load_text_url_from_a_local_server(local_server):
    assert load_text_url(local_server + "/story.txt") == "A story served locally. Ünïcode."
    assert load_text(local_server + "/story.txt") == "A story served locally. Ünïcode."
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text_url(local_server + "/latin.txt")
    with pytest.raises(ConnectionError, match="could not download"):
        load_text_url(local_server + "/missing.txt")  # HTTP 404


def test_load_text_url_errors():
    with pytest.raises(ValueError, match="http"):
        load_text_url("ftp://example.com/a.txt")
    with pytest.raises(ConnectionError, match="could not download"):
        load_text_url("http://127.0.0.1:9/nothing.txt", timeout=5)  # nothing listens on port 9
