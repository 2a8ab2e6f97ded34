"""Text to train on: the course's own story corpus, your text files, and (when online) a URL.

The bundled corpus, "Week Stories", is *generated* by the code below from a fixed seed: short
children's stories about a week in someone's life. Nothing is downloaded and no text is copied
from anywhere; the same seed gives the same characters on every machine, in well under a second.

Why generated stories rather than one short novel? A small model trained on a single short text
mostly memorises it: its training loss falls while its validation loss rises. These stories
are combinatorial -- thousands of different stories built from a few hundred words and a few
dozen sentence patterns -- so what a model can learn from them *generalises*:

- grammar and spelling of simple English sentences, capital letters, quotation marks;
- agreement: "Mia ... she ... her", "one apple" / "three apples";
- sequences: Monday -> Tuesday -> Wednesday, and counting "one, two, three, four";
- cause and effect: rain -> an umbrella and a trip to the library, wind -> a kite on the hill;
- copying from the context: the hero's, the friend's and the pet's names (58 heroes, 20 pets) are
  introduced at the start and come back in every paragraph;
- memory across a story: the red kite lost at the park on Tuesday is found at the park later,
  a question "How many shells do you have?" is answered with the number just counted.

Validation stories come from the same generator but are different stories, so the validation
loss tells whether the model learned the patterns rather than the training text.

Functions:
    load_corpus(split)        the bundled corpus: "train", "val" or "all"
    generate_story(rng)       one story from a ``random.Random``
    load_text_file(path)      any UTF-8 text file, with clear errors for anything else
    load_text_url(url)        a UTF-8 text from the web (needs a network)
    load_text(source)         one of the three, chosen from ``source``
    unigram_entropy(ids)      the entropy of the token frequencies: the loss of a model that
                              ignores context, and so the bar a trained model must get below

Taught in notebook 08 (training).
"""

from __future__ import annotations

import functools
import math
import random
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence, Union

import torch

#: Seed of the bundled corpus; change it (or ``n_stories``) to get another corpus of the same kind.
CORPUS_SEED = 2024
#: Number of stories in the bundled corpus (about 5 MB of text, about 1.15 million GPT-2 tokens).
CORPUS_STORIES = 3000
#: Fraction of the stories used for validation (the last ones generated).
VAL_FRACTION = 0.1
#: Separator between stories: GPT-2's end-of-text token.
STORY_SEPARATOR = "<|endoftext|>"

# ---------------------------------------------------------------------------------------------
# The world the stories take place in. Lists (not sets), so that choices are reproducible.
# ---------------------------------------------------------------------------------------------

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve")

# name, pronoun set ("she" or "he"), what they are
HEROES = (
    ("Mia", "she", "girl"), ("Lily", "she", "girl"), ("Emma", "she", "girl"), ("Zoe", "she", "girl"),
    ("Nora", "she", "girl"), ("Ava", "she", "girl"), ("Rosa", "she", "girl"), ("Hana", "she", "girl"),
    ("Ben", "he", "boy"), ("Leo", "he", "boy"), ("Sam", "he", "boy"), ("Max", "he", "boy"),
    ("Omar", "he", "boy"), ("Theo", "he", "boy"), ("Jack", "he", "boy"), ("Ravi", "he", "boy"),
    ("Pip", "he", "little fox"), ("Daisy", "she", "small rabbit"), ("Bruno", "he", "brown bear"),
    ("Luna", "she", "curious cat"), ("Otto", "he", "young otter"), ("Wren", "she", "little bird"),
    ("Anna", "she", "girl"), ("Ruby", "she", "girl"), ("Grace", "she", "girl"), ("Alice", "she", "girl"),
    ("Sara", "she", "girl"), ("Julia", "she", "girl"), ("Clara", "she", "girl"), ("Maya", "she", "girl"),
    ("Amy", "she", "girl"), ("Kate", "she", "girl"), ("Lucy", "she", "girl"), ("Jane", "she", "girl"),
    ("Iris", "she", "girl"), ("Ivy", "she", "girl"), ("Nina", "she", "girl"), ("Tara", "she", "girl"),
    ("Tom", "he", "boy"), ("Adam", "he", "boy"), ("Noah", "he", "boy"), ("Eli", "he", "boy"),
    ("Finn", "he", "boy"), ("Hugo", "he", "boy"), ("Jonas", "he", "boy"), ("Kai", "he", "boy"),
    ("Liam", "he", "boy"), ("Luke", "he", "boy"), ("Nick", "he", "boy"), ("Paul", "he", "boy"),
    ("Ryan", "he", "boy"), ("Victor", "he", "boy"), ("Felix", "he", "boy"), ("Oscar", "he", "boy"),
    ("Hazel", "she", "gray squirrel"), ("Milo", "he", "little mouse"), ("Eva", "she", "young duck"),
    ("Arthur", "he", "old tortoise"),
)
PRONOUNS = {
    "she": {"subj": "she", "obj": "her", "pos": "her"},
    "he": {"subj": "he", "obj": "him", "pos": "his"},
}
GROWN_UPS = ("Mom", "Dad", "Grandma", "Grandpa", "Aunt Rosa", "Uncle Tom")
HOMES = ("a little house", "a blue house", "a cottage", "a flat above a bakery", "a house with a red door",
         "a small farmhouse")
LANDMARKS = ("the river", "the forest", "the sea", "the big hill", "the old mill", "the market square")
PETS = (("dog", "Rex"), ("dog", "Biscuit"), ("cat", "Tiger"), ("cat", "Mittens"), ("hamster", "Nibbles"),
        ("parrot", "Kiwi"), ("goldfish", "Bubbles"), ("puppy", "Pepper"), ("dog", "Buddy"), ("dog", "Rocky"),
        ("cat", "Shadow"), ("cat", "Ginger"), ("rabbit", "Coco"), ("dog", "Toby"), ("dog", "Rusty"),
        ("turtle", "Charlie"), ("pony", "Willow"), ("dog", "Patch"), ("cat", "Bella"), ("hamster", "Peanut"))
ADJECTIVES = ("kind", "brave", "curious", "cheerful", "clever", "gentle", "busy", "friendly")

# weather: (word, what the hero puts on or takes, places that suit it)
WEATHER = (
    ("sunny", "put on {pos} sun hat", ("park", "beach", "garden", "farm", "river")),
    ("warm", "put on {pos} sandals", ("beach", "park", "river", "garden")),
    ("rainy", "took {pos} umbrella", ("library", "museum", "bakery", "school")),
    ("cold", "wore {pos} warm scarf", ("museum", "library", "market", "bakery")),
    ("windy", "held on to {pos} hat", ("hill", "beach", "park")),
    ("snowy", "put on {pos} mittens and {pos} boots", ("hill", "park", "forest")),
    ("cloudy", "took {pos} jacket", ("forest", "market", "farm", "school", "river")),
)


class Place:
    """A place the characters can visit: what they do there, what they find, where things hide."""

    def __init__(self, name: str, activities: Sequence[str], finds: Sequence[str], spots: Sequence[str]) -> None:
        self.name = name  # used as "the {name}"
        self.activities = activities  # past tense, subject "they"
        self.finds = finds  # countable things, singular
        self.spots = spots  # where a lost thing can be found


PLACES = {
    "park": Place("park", ("played on the swings", "fed the ducks by the pond", "ran around the big oak tree",
                           "had a picnic on the grass"), ("leaf", "acorn", "feather"),
                  ("under the bench", "behind the slide", "next to the pond")),
    "beach": Place("beach", ("built a sand castle", "splashed in the waves", "looked for crabs",
                             "watched the boats"), ("shell", "pebble", "starfish"),
                   ("under a rock", "behind the sand castle", "near the blue boat")),
    "forest": Place("forest", ("walked along the narrow path", "listened to the birds",
                               "climbed over a fallen log", "looked for animal tracks"),
                    ("pinecone", "mushroom", "acorn"), ("under a bush", "beside a mossy stone", "inside a hollow log")),
    "garden": Place("garden", ("watered the flowers", "planted seeds in a row", "picked ripe tomatoes",
                               "looked for ladybugs"), ("strawberry", "flower", "snail"),
                    ("under the tomato plants", "behind the watering can", "next to the gate")),
    "market": Place("market", ("bought fresh bread", "looked at the colorful fruit", "talked to the friendly baker",
                               "listened to a man playing the violin"), ("apple", "orange", "lemon"),
                    ("under the fruit stand", "beside the bread basket", "near the flower stall")),
    "library": Place("library", ("read a book about dinosaurs", "sat in the quiet corner",
                                 "looked at pictures of the moon", "listened to a story"),
                     ("book", "bookmark", "map"), ("under a table", "on a high shelf", "behind a big chair")),
    "farm": Place("farm", ("fed the chickens", "brushed the brown horse", "collected eggs in a basket",
                           "watched the cows in the field"), ("egg", "chick", "carrot"),
                  ("in the hay", "behind the barn door", "next to the water trough")),
    "school": Place("school", ("painted a picture", "sang a song with the class", "played a counting game",
                               "built a tower of blocks"), ("crayon", "pencil", "sticker"),
                    ("under a desk", "in the art room", "next to the blackboard")),
    "river": Place("river", ("threw little stones into the water", "watched the fish swim",
                             "sat on the old wooden bridge", "saw a family of ducks"), ("stone", "stick", "frog"),
                   ("under the bridge", "between two big stones", "in the tall grass")),
    "hill": Place("hill", ("flew a kite", "rolled down the grass", "looked at the town below",
                           "raced to the top"), ("flower", "stone", "butterfly"),
                  ("behind a tree", "under a bush", "near the top")),
    "museum": Place("museum", ("looked at a huge dinosaur", "saw old coins and swords", "drew a picture of a ship",
                               "walked through the hall of stars"), ("picture", "statue", "coin"),
                    ("under a bench", "next to the dinosaur", "by the front door")),
    "bakery": Place("bakery", ("watched the baker make bread", "smelled the warm cakes", "ate a sweet bun",
                               "helped to decorate cookies"), ("cookie", "bun", "cupcake"),
                    ("under the counter", "beside the big oven", "on a chair by the window")),
}
PLURALS = {"leaf": "leaves", "starfish": "starfish", "strawberry": "strawberries", "butterfly": "butterflies",
           "chick": "chicks", "box": "boxes", "peach": "peaches", "tomato": "tomatoes", "potato": "potatoes"}

# Things that can get lost: (thing, can it have a color?)
BELONGINGS = ("kite", "ball", "hat", "scarf", "toy boat", "teddy bear", "backpack", "glove", "drum", "yo-yo")
COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "striped", "spotted")
# (one, many)
FOODS = (("apple", "apples"), ("pear", "pears"), ("cookie", "cookies"), ("plum", "plums"),
         ("carrot", "carrots"), ("cherry", "cherries"), ("muffin", "muffins"), ("peach", "peaches"))
TASKS = (
    ("carry this heavy basket", "carried the basket to the kitchen"),
    ("find my glasses", "found the glasses on the bookshelf"),
    ("water the plants", "watered every plant in the house"),
    ("bake some bread", "mixed the flour and the water and baked a round loaf"),
    ("fix the fence", "held the boards while the fence was fixed"),
    ("tidy the shed", "put all the tools back in their boxes"),
    ("paint the gate", "painted the gate a bright green"),
)
FEELINGS_GOOD = ("happy", "glad", "proud", "excited")
FEELINGS_BAD = ("sad", "worried", "upset")


def plural(noun: str, n: int = 2) -> str:
    """English plural of the nouns used here: ``plural("leaf") == "leaves"``; ``n == 1`` keeps it."""
    if n == 1:
        return noun
    if noun in PLURALS:
        return PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return noun + "s"


def article(word: str) -> str:
    """``"a"`` or ``"an"`` for the word that follows."""
    return "an" if word[0].lower() in "aeiou" else "a"


def number_word(n: int) -> str:
    """0..12 as an English word (the stories only count that far)."""
    return NUMBERS[n]


def capitalize(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


class _StoryWriter:
    """Writes one story: plans the characters first, then adds one paragraph per day."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        name, pron, kind = rng.choice(HEROES)
        self.hero = name
        self.p = PRONOUNS[pron]
        self.kind = kind
        friends = [h for h in HEROES if h[0] != name]
        self.friend = rng.choice(friends)[0]
        self.grown_up = rng.choice(GROWN_UPS)
        self.pet_kind, self.pet = rng.choice(PETS)
        self.day = rng.randrange(7)
        self.memories: list[str] = []  # what happened, in the hero's words, for the ending

    # -- small helpers ---------------------------------------------------------------------
    def say(self, speaker: str, words: str, verb: str = "said") -> str:
        """A line of dialogue: '"Words," said Mia.' or '"Words?" asked Mia.'"""
        if words.endswith(("?", "!")):
            return f'"{words}" {verb} {speaker}.'
        return f'"{words}," {verb} {speaker}.'

    def day_name(self) -> str:
        return DAYS[self.day % 7]

    # -- the parts of a story --------------------------------------------------------------
    def title(self, lost: tuple[str, str] | None) -> str:
        r = self.rng
        if lost is not None:
            return f"{self.hero} and the {lost[0].title()} {lost[1].title()}"
        return r.choice((f"{self.hero}'s Busy Week", f"A Week with {self.hero}", f"{self.hero} and {self.friend}",
                         f"{self.hero} and {self.pet} the {capitalize(self.pet_kind)}"))

    def introduction(self) -> str:
        r, p = self.rng, self.p
        adjective = r.choice(ADJECTIVES)
        s = [f"Once upon a time, there was {article(adjective)} {adjective} {self.kind} named {self.hero}."]
        s.append(f"{capitalize(p['subj'])} lived in {r.choice(HOMES)} near {r.choice(LANDMARKS)}.")
        s.append(f"{capitalize(p['subj'])} had {article(self.pet_kind)} {self.pet_kind} called {self.pet}.")
        s.append(f"{capitalize(p['pos'])} best friend was {self.friend}.")
        return " ".join(s)

    def outing(self) -> tuple[str, Place]:
        """Weather -> what to wear -> a place that suits the weather -> what they did there."""
        r, p = self.rng, self.p
        weather, clothes, suited = r.choice(WEATHER)
        place = PLACES[r.choice(suited)]
        s = [f"On {self.day_name()}, it was {weather}, so {self.hero} {clothes.format(pos=p['pos'])}."]
        if r.random() < 0.5:
            s.append(self.say(self.friend, "Where are we going today?", "asked"))
            s.append(self.say(self.hero, f"We are going to the {place.name}"))
            s.append(f"{self.hero} and {self.friend} went to the {place.name}.")
        else:
            s.append(f"{self.hero} went to the {place.name} with {self.friend}.")
        first, second = r.sample(place.activities, 2)
        s.append(f"At the {place.name}, they {first}. Then they {second}.")
        self.memories.append(f"when we {first} at the {place.name}")
        return " ".join(s), place

    def counting(self, place: Place) -> str:
        r = self.rng
        thing = r.choice(place.finds)
        n = r.randint(2, 9)
        who = r.choice((self.hero, self.friend))
        counted = ", ".join(NUMBERS[1:n + 1])
        s = [f"{who} found some {plural(thing)}.", f"{who} counted them: {counted}."]
        if r.random() < 0.5:
            other = self.friend if who == self.hero else self.hero
            s.append(self.say(other, f"How many {plural(thing)} do you have?", "asked"))
            s.append(self.say(who, f"I have {number_word(n)} {plural(thing, n)}"))
        else:
            s.append(f"There were {number_word(n)} {plural(thing, n)}.")
        return " ".join(s)

    def sharing(self) -> str:
        """A little sum: x things, then y more (or fewer)."""
        r, p = self.rng, self.p
        one, many = r.choice(FOODS)
        if r.random() < 0.5:
            x, y = r.randint(1, 6), r.randint(1, 5)
            return (f"{self.grown_up} gave {self.hero} {number_word(x)} {one if x == 1 else many}. "
                    f"Then {self.friend} gave {p['obj']} {number_word(y)} more. "
                    f"Now {self.hero} had {number_word(x + y)} {many}.")
        x = r.randint(3, 10)
        y = r.randint(1, x - 1)
        left = x - y
        return (f"{self.hero} had {number_word(x)} {many}. {capitalize(p['subj'])} shared {number_word(y)} of them "
                f"with {self.friend}. Now {self.hero} had {number_word(left)} {one if left == 1 else many} left.")

    def helping(self) -> str:
        r, p = self.rng, self.p
        ask, done = r.choice(TASKS)
        s = [f"In the evening, {self.grown_up} said, \"{self.hero}, can you help me {ask}?\"",
             self.say(self.hero, "Yes, I can help you"),
             f"Together they {done}.",
             self.say(self.grown_up, f"Thank you, {self.hero}. You are very kind"),
             f"{self.hero} felt {r.choice(FEELINGS_GOOD)}."]
        self.memories.append(f"helping {self.grown_up}")
        return " ".join(s)

    def pet_scene(self) -> str:
        r, p = self.rng, self.p
        action = r.choice(("chased a butterfly", "fell asleep in the sun", "jumped into a puddle",
                           "hid under the bed", "ate a whole sock", "sang along with the radio"))
        reaction = r.choice(("laughed and laughed", "shook " + p["pos"] + " head and smiled",
                             "took a picture", "gave " + self.pet + " a hug"))
        return f"When {self.hero} came home, {self.pet} the {self.pet_kind} {action}. {self.hero} {reaction}."

    def lose(self, thing: tuple[str, str], place: Place) -> str:
        r, p = self.rng, self.p
        color, item = thing
        return (f"Before they went home, {self.hero} could not find {p['pos']} {color} {item}. "
                f"{capitalize(p['subj'])} looked everywhere, but it was gone. "
                f"{self.hero} was {r.choice(FEELINGS_BAD)}. "
                + self.say(self.friend, f"Don't worry, {self.hero}. We will find it tomorrow"))

    def find(self, thing: tuple[str, str], place: Place) -> str:
        r, p = self.rng, self.p
        color, item = thing
        spot = r.choice(place.spots)
        self.memories.append(f"finding my {color} {item}")
        return (f"On {self.day_name()}, {self.hero} and {self.friend} went back to the {place.name}. "
                f"They looked and looked. Then {self.friend} shouted, \"Look, {self.hero}! There it is!\" "
                f"The {color} {item} was {spot}. {self.hero} was {r.choice(FEELINGS_GOOD)} again.")

    def ending(self) -> str:
        r = self.rng
        memory = r.choice(self.memories) if self.memories else "the whole week"
        # "That night" (not "On Sunday night"): a paragraph that starts with "On" is always the next day
        return (f"That night, {self.hero} told {self.grown_up} about the week. "
                + self.say(self.grown_up, "What was the best part?", "asked")
                + f" {self.hero} thought for a moment. " + self.say(self.hero, f"The best part was {memory}")
                + " Then " + self.p["subj"] + " fell asleep. The end.")

    # -- the whole story -------------------------------------------------------------------
    def write(self) -> str:
        r = self.rng
        n_days = r.randint(2, 4)
        lost_day = r.randrange(n_days - 1) if r.random() < 0.6 else None  # lost on one day, found the next
        lost = (r.choice(COLORS), r.choice(BELONGINGS)) if lost_day is not None else None
        title = self.title(lost)
        paragraphs = [self.introduction()]
        lost_place = None
        for i in range(n_days):
            if i > 0:
                self.day += 1
            if lost is not None and lost_day is not None and i == lost_day + 1:
                text = self.find(lost, lost_place)
                extra = r.choice((self.counting(lost_place), self.pet_scene(), self.sharing()))
                paragraphs.append(text + " " + extra)
                continue
            text, place = self.outing()
            parts = [text]
            for scene in r.sample(("count", "share", "pet", "help"), r.randint(1, 2)):
                parts.append({"count": lambda: self.counting(place), "share": self.sharing,
                              "pet": self.pet_scene, "help": self.helping}[scene]())
            if lost is not None and i == lost_day:
                lost_place = place
                parts.append(self.lose(lost, place))
            paragraphs.append(" ".join(parts))
        paragraphs.append(self.ending())
        return title + "\n\n" + "\n\n".join(paragraphs) + "\n"


def generate_story(rng: random.Random) -> str:
    """One story (a title line, an introduction, a paragraph per day and an ending), drawn with ``rng``."""
    return _StoryWriter(rng).write()


def generate_stories(n_stories: int = CORPUS_STORIES, seed: int = CORPUS_SEED) -> list[str]:
    """``n_stories`` stories from one ``random.Random(seed)``: the same list on every machine."""
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n_stories)]


@functools.lru_cache(maxsize=4)
def _corpus_splits(n_stories: int, seed: int, val_fraction: float) -> tuple[str, str]:
    stories = generate_stories(n_stories, seed)
    n_val = max(1, round(n_stories * val_fraction))
    train, val = stories[:-n_val], stories[-n_val:]
    return STORY_SEPARATOR.join(train), STORY_SEPARATOR.join(val)


def load_corpus(split: str = "train", *, n_stories: int = CORPUS_STORIES, seed: int = CORPUS_SEED,
                val_fraction: float = VAL_FRACTION) -> str:
    """The bundled "Week Stories" corpus as one string, stories separated by ``<|endoftext|>``.

    Args:
        split: ``"train"`` (the first 90 % of the stories), ``"val"`` (the last 10 %: different
            stories, same generator) or ``"all"`` (train + val, in that order).
        n_stories, seed, val_fraction: change these for a bigger, smaller or different corpus.

    Generated on first use (well under a second) and cached. Encode it with
    ``tokenizer.encode(text, allowed_special={"<|endoftext|>"})`` (``GPTDatasetV1`` does).
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    if n_stories < 2:
        raise ValueError(f"n_stories must be at least 2 (one for training, one for validation), got {n_stories}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    train, val = _corpus_splits(n_stories, seed, val_fraction)
    if split == "train":
        return train
    if split == "val":
        return val
    return train + STORY_SEPARATOR + val


# ---------------------------------------------------------------------------------------------
# Your own text
# ---------------------------------------------------------------------------------------------

def _decode_utf8(data: bytes, where: str) -> str:
    """Decode bytes as UTF-8 text, or raise a ValueError that says what was found instead."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte-order mark some editors write: not part of the text
    if b"\x00" in data[:8192]:
        raise ValueError(
            f"{where} looks like a binary file (it contains NUL bytes), not text; "
            "give a plain-text file (.txt) such as a book from Project Gutenberg in UTF-8"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where} is not UTF-8 text: byte 0x{data[exc.start]:02x} at position {exc.start} cannot be decoded. "
            "Save the file as UTF-8 (most editors offer 'Save with encoding'), or convert it, e.g. "
            "`iconv -f latin1 -t utf-8 in.txt > out.txt`"
        ) from None


def load_text_file(path: Union[str, Path]) -> str:
    """Read a UTF-8 text file and return its contents.

    Raises ``FileNotFoundError`` for a missing path, ``IsADirectoryError`` for a folder and
    ``ValueError`` for an empty file, a binary file or text in another encoding (with a hint on
    how to convert it).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r} (the current directory is {str(Path.cwd())!r})")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; give the path of a text file inside it")
    text = _decode_utf8(path.read_bytes(), f"the file {str(path)!r}")
    if not text.strip():
        raise ValueError(f"the file {str(path)!r} is empty; there is nothing to train on")
    return text


def load_text_url(url: str, timeout: float = 30.0) -> str:
    """Download a UTF-8 text file (``http://`` or ``https://``) and return it. Needs a network.

    Raises ``ConnectionError`` when the address cannot be reached, ``ValueError`` when what
    came back is not UTF-8 text.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"load_text_url expects an http:// or https:// address, got {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (only http/https)
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(
            f"could not download {url!r} ({reason}); check the address and your network, or download the file "
            "yourself and use load_text_file(path)"
        ) from None
    text = _decode_utf8(data, f"the download from {url!r}")
    if not text.strip():
        raise ValueError(f"the download from {url!r} is empty")
    return text


def load_text(source: Union[str, Path, None] = None, split: str = "train") -> str:
    """Load training text from wherever ``source`` says.

    - ``None`` or ``"bundled"``: the bundled corpus, ``split`` as in ``load_corpus``;
    - a string starting with ``http://`` or ``https://``: ``load_text_url``;
    - anything else: a path, ``load_text_file``.
    """
    if source is None or str(source) == "bundled":
        return load_corpus(split)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return load_text_url(source)
    return load_text_file(source)


# ---------------------------------------------------------------------------------------------
# How hard is the text? The unigram entropy.
# ---------------------------------------------------------------------------------------------

def unigram_entropy(token_ids: Union[torch.Tensor, Iterable[int]]) -> float:
    """Entropy of the token frequencies, in nats per token (the unit of ``F.cross_entropy``).

    ``H = -sum_t p(t) ln p(t)``, where ``p(t)`` is how often token ``t`` occurs. It is the
    cross-entropy loss of the best model that ignores context and always predicts the same
    distribution: a trained model whose validation loss lies far below it has learned to use
    the context. ``math.exp`` of it is that model's perplexity.
    """
    if isinstance(token_ids, torch.Tensor):
        counts = torch.bincount(token_ids.flatten().long()).double()
        counts = counts[counts > 0]
        total = counts.sum()
        if total == 0:
            raise ValueError("unigram_entropy needs at least one token")
        p = counts / total
        return float(-(p * p.log()).sum())
    counts = Counter(token_ids)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("unigram_entropy needs at least one token")
    return -sum(c / total * math.log(c / total) for c in counts.values())


def corpus_stats(tokenizer=None) -> dict[str, float]:
    """Sizes and unigram entropy of the bundled corpus, for printing in notebooks and benchmarks.

    Returns a dict with ``train_chars``, ``val_chars``, ``train_tokens``, ``val_tokens``,
    ``distinct_tokens`` and ``unigram_entropy`` (nats per token, of the training split).
    """
    if tokenizer is None:
        from .tokenizer import get_tokenizer

        tokenizer = get_tokenizer()
    train, val = load_corpus("train"), load_corpus("val")
    train_ids = tokenizer.encode(train, allowed_special={STORY_SEPARATOR})
    val_ids = tokenizer.encode(val, allowed_special={STORY_SEPARATOR})
    return {
        "train_chars": len(train),
        "val_chars": len(val),
        "train_tokens": len(train_ids),
        "val_tokens": len(val_ids),
        "distinct_tokens": len(set(train_ids) | set(val_ids)),
        "unigram_entropy": unigram_entropy(train_ids),
    }
