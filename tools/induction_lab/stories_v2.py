"""Draft of the story corpus v2 (issue 17): stories that need copying from the context.

Not part of the package yet: the shipped course model was trained on ``gptbook.corpus`` (v1), whose
hash its tests check. This module subclasses v1's story writer and changes what issue 17 asks for:

- pets get *made-up* names of 2-3 syllables ("Zobatu"): several tokens each, new in every story, so
  that after the name's first token comes back only copying from the context predicts the rest;
- a *secret code* scene: a character makes up 6-12 words (world words and made-up ones), the friend
  says them back (and, with ``repeats=3``, they say them together): ``A B C ... A -> B``;
- every day's paragraph ends "It was a fun Tuesday.", so the day before "\\n\\nOn" stands right
  before it (weekday order becomes a short-range rule);
- counting is drawn three times as often as the other scenes.

``stories(n, seed, **params)`` returns (train text, validation text), joined with ``<|endoftext|>``.
"""

from __future__ import annotations

import random

from gptbook import corpus as v1

SYLLABLES = ("ba", "be", "bo", "da", "di", "do", "fa", "fi", "ga", "go", "ka", "ki", "ko", "la", "li", "lo",
             "ma", "mi", "mo", "na", "ni", "no", "pa", "pi", "po", "ra", "ri", "ro", "sa", "si", "so", "ta",
             "ti", "to", "tu", "va", "vi", "wa", "za", "zo", "zu", "mor", "tek", "lin", "bur", "gan", "pel",
             "rum", "wex")
PET_KINDS = tuple(sorted({kind for kind, _ in v1.PETS}))
DAY_WORDS = ("good", "lovely", "busy", "happy", "fun", "long")


def _world_words() -> tuple[str, ...]:
    words: set[str] = set()
    for group in (v1.ADJECTIVES, v1.COLORS, v1.BELONGINGS, v1.FEELINGS_GOOD, v1.FEELINGS_BAD, v1.NUMBERS):
        for entry in group:
            words.update(entry.split())
    for place in v1.PLACES.values():
        words.add(place.name)
        words.update(place.finds)
    words.update(one for one, _ in v1.FOODS)
    return tuple(sorted(w for w in words if w.isalpha() and w.islower()))


CODE_WORDS = _world_words()
DEFAULTS = dict(code_prob=1.0, code_min=6, code_max=12, repeats=3, made_up_share=0.5, scene_weights=(3, 1, 1, 1))


def made_up_name(rng: random.Random) -> str:
    """2-3 random syllables, capitalised: "Zobatu"."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


class StoryWriterV2(v1._StoryWriter):
    """v1's writer with made-up pet names, secret codes, day endings and more counting."""

    def __init__(self, rng: random.Random, params: dict) -> None:
        super().__init__(rng)
        self.params = params
        self.pet_kind = rng.choice(PET_KINDS)
        self.pet = made_up_name(rng)

    def secret_code(self) -> str:
        r, p = self.rng, self.params
        words: list[str] = []
        n = r.randint(p["code_min"], p["code_max"])
        while len(words) < n:
            word = made_up_name(r).lower() if r.random() < p["made_up_share"] else r.choice(CODE_WORDS)
            if word not in words:
                words.append(word)
        code = " ".join(words)
        who, other = r.sample((self.hero, self.friend), 2)
        text = f"{who} made up a secret code: {code}. {other} said it back: {code}."
        if p["repeats"] >= 3:
            text += f" Then they said it together: {code}."
        return text

    def write(self) -> str:
        r, p = self.rng, self.params
        n_days = r.randint(2, 4)
        lost_day = r.randrange(n_days - 1) if r.random() < 0.6 else None
        lost = (r.choice(v1.COLORS), r.choice(v1.BELONGINGS)) if lost_day is not None else None
        title = self.title(lost)
        paragraphs = [self.introduction()]
        lost_place = None
        for i in range(n_days):
            if i > 0:
                self.day += 1
            if lost is not None and lost_day is not None and i == lost_day + 1:
                parts = [self.find(lost, lost_place),
                         r.choice((self.counting(lost_place), self.pet_scene(), self.sharing()))]
            else:
                text, place = self.outing()
                parts, chosen = [text], []
                while len(chosen) < r.randint(1, 2):  # a second scene with probability 1/2 (as the runs drew it)
                    scene = r.choices(("count", "share", "pet", "help"), weights=p["scene_weights"])[0]
                    if scene not in chosen:
                        chosen.append(scene)
                for scene in chosen:
                    parts.append({"count": lambda: self.counting(place), "share": self.sharing,
                                  "pet": self.pet_scene, "help": self.helping}[scene]())
                if lost is not None and i == lost_day:
                    lost_place = place
                    parts.append(self.lose(lost, place))
            if r.random() < p["code_prob"]:
                parts.append(self.secret_code())
            parts.append(f"It was a {r.choice(DAY_WORDS)} {self.day_name()}.")
            paragraphs.append(" ".join(parts))
        paragraphs.append(self.ending())
        return title + "\n\n" + "\n\n".join(paragraphs) + "\n"


def stories(n: int = 3000, seed: int = 2024, n_val: int = 300, **params) -> tuple[str, str]:
    """(train text, validation text) of ``n`` v2 stories from ``random.Random(seed)``."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown story parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    rng = random.Random(seed)
    texts = [StoryWriterV2(rng, {**DEFAULTS, **params}).write() for _ in range(n)]
    return v1.STORY_SEPARATOR.join(texts[:-n_val]), v1.STORY_SEPARATOR.join(texts[-n_val:])
