"""The story world of the bundled corpus, "Week Stories": who lives in it, and how one story is written.

Each story is a week in someone's life, drawn with a ``random.Random``: a hero, a best friend, a
grown-up and a pet; a paragraph for each of 2-4 days (the weather, an outing, a scene or two); an
ending. The stories are built so that each skill the course names can only be learned with the
mechanism the course names for it (notebooks 08 and 10):

- **counting** ("counted them: one, two, three,") and **count recall** ("There were three");
  counting is drawn three times as often as the other scenes;
- **weekday order**: every day's paragraph ends "It was a fun Tuesday." and the next one starts
  "On Wednesday": the day before stands a few tokens back, so the successor rule is short-range;
- **copying from the context**: the pet has a *made-up* name of 2-3 syllables ("Zobatu", several
  tokens, new in every story), and every day someone makes up a *secret code* of 6-12 words that
  is said back twice. After a code's first word comes back, only looking up what followed it the
  first time predicts the rest (``A B ... A -> B``): the job of an induction head.

``generate_story(rng)`` writes one story; ``generate_stories(n, seed)`` a reproducible list.
``gptbook.training.corpus`` joins them into the training and validation text.
"""

from __future__ import annotations

import random
from typing import Sequence

#: Seed of the bundled corpus; change it (or ``n_stories``) to get another corpus of the same kind.
CORPUS_SEED = 2024
#: Number of stories in the bundled corpus (about 7.4 MB of text, about 2 million GPT-2 tokens).
CORPUS_STORIES = 3000

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
# what the pet is; its name is made up for each story (made_up_name)
PET_KINDS = ("cat", "dog", "goldfish", "hamster", "parrot", "pony", "puppy", "rabbit", "turtle")
# made-up names and code words are 2-3 of these, e.g. "Zobatu", "vipani"
SYLLABLES = ("ba", "be", "bo", "da", "di", "do", "fa", "fi", "ga", "go", "ka", "ki", "ko", "la", "li", "lo",
             "ma", "mi", "mo", "na", "ni", "no", "pa", "pi", "po", "ra", "ri", "ro", "sa", "si", "so", "ta",
             "ti", "to", "tu", "va", "vi", "wa", "za", "zo", "zu", "mor", "tek", "lin", "bur", "gan", "pel",
             "rum", "wex")
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
# how a day was: every day's paragraph ends "It was a fun Tuesday."
DAY_WORDS = ("good", "lovely", "busy", "happy", "fun", "long")
# the scenes of an outing day and how often each is drawn (counting three times as often)
SCENES, SCENE_WEIGHTS = ("count", "share", "pet", "help"), (3, 1, 1, 1)
# a secret code: 6-12 distinct words, half of them made up, the rest words of the stories' world
CODE_LENGTH, CODE_MADE_UP_SHARE = (6, 12), 0.5


def _world_words() -> tuple[str, ...]:
    """The one-word lower-case words of the world (adjectives, colours, things, places, numbers...)."""
    words: set[str] = set()
    for group in (ADJECTIVES, COLORS, BELONGINGS, FEELINGS_GOOD, FEELINGS_BAD, NUMBERS):
        for entry in group:
            words.update(entry.split())
    for place in PLACES.values():
        words.add(place.name)
        words.update(place.finds)
    words.update(one for one, _ in FOODS)
    return tuple(sorted(w for w in words if w.isalpha() and w.islower()))


#: The real words a secret code draws from (sorted, so that draws are reproducible).
CODE_WORDS = _world_words()


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
    """The sentence with its first letter upper-case (the rest unchanged)."""
    return sentence[0].upper() + sentence[1:]


def made_up_name(rng: random.Random) -> str:
    """2-3 random syllables, capitalised: ``"Zobatu"`` (several GPT-2 tokens, new in each story)."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


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
        self.pet_kind, self.pet = rng.choice(PET_KINDS), made_up_name(rng)
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

    def secret_code(self) -> str:
        """Someone makes up a code of 6-12 words; it is said back, then said together: ``A B C ... A -> B``."""
        r = self.rng
        words: list[str] = []
        n = r.randint(*CODE_LENGTH)
        while len(words) < n:
            word = made_up_name(r).lower() if r.random() < CODE_MADE_UP_SHARE else r.choice(CODE_WORDS)
            if word not in words:
                words.append(word)
        code = " ".join(words)
        who, other = r.sample((self.hero, self.friend), 2)
        return (f"{who} made up a secret code: {code}. {other} said it back: {code}. "
                f"Then they said it together: {code}.")

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
                parts = [self.find(lost, lost_place),
                         r.choice((self.counting(lost_place), self.pet_scene(), self.sharing()))]
            else:
                text, place = self.outing()
                parts, scenes = [text], []
                for _ in range(r.randint(1, 2)):  # one or two different scenes, counting the likeliest
                    weights = [0 if scene in scenes else w for scene, w in zip(SCENES, SCENE_WEIGHTS)]
                    scenes.append(r.choices(SCENES, weights=weights)[0])
                for scene in scenes:
                    parts.append({"count": lambda: self.counting(place), "share": self.sharing,
                                  "pet": self.pet_scene, "help": self.helping}[scene]())
                if lost is not None and i == lost_day:
                    lost_place = place
                    parts.append(self.lose(lost, place))
            parts.append(self.secret_code())
            parts.append(f"It was a {r.choice(DAY_WORDS)} {self.day_name()}.")  # the day before "On <next day>"
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

