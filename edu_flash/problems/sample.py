"""Built-in arithmetic word problems with exact worked solutions, in GSM8K format.

Written by the project so the demo and tests need no download. Each problem is a chain of
`difficulty` arithmetic steps (1-5) in one of several everyday contexts (the topic); every step
is a `<<expr=value>>` annotation and the last line is `#### answer`, so the verifier passes them
all and `derive_difficulty` recovers the level from the number of steps.
"""
from __future__ import annotations

import random

_NAMES = ["Ava", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Iman", "Jonas", "Kemi", "Luis",
          "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yara", "Zoe"]

# topic -> (item, container, its plural, place, unit price in dollars, verb for getting more, verb for losing some)
CONTEXTS = {
    "shopping": ("apples", "bag", "bags", "the market", 2, "buys", "eats"),
    "baking": ("cookies", "tray", "trays", "the bakery", 3, "bakes", "gives away"),
    "school": ("pencils", "box", "boxes", "the school store", 1, "gets", "lends out"),
    "garden": ("tulip bulbs", "crate", "crates", "the garden center", 4, "plants", "loses"),
    "library": ("books", "shelf", "shelves", "the library sale", 5, "collects", "donates"),
    "farm": ("eggs", "carton", "cartons", "the farm stand", 1, "gathers", "sells"),
    "sports": ("tennis balls", "can", "cans", "the sports shop", 2, "orders", "loses"),
}
_LATER = ["A week later", "The next day", "On Monday", "By the weekend", "A month later"]
TOPICS = tuple(CONTEXTS)
DIFFICULTIES = (1, 2, 3, 4, 5)


def _first(rng, name, item, box, boxes, place, diff):
    """The opening quantity: packs of items (one multiplication step)."""
    k, m = rng.randint(2, 4 + diff), rng.randint(3, 6 + 2 * diff)
    v = k * m
    q = rng.choice([f"{name} {{get}} {k} {boxes} of {item} at {place}, with {m} {item} in each {box}.",
                    f"At {place}, {name} {{get}} {k} {boxes} of {item}. Each {box} holds {m} {item}."])
    s = f"{name} starts with {k}*{m} = <<{k}*{m}={v}>>{v} {item}."
    return q, s, v


def _add(rng, name, item, v, get, lose):
    k = rng.randint(2, 25)
    q = rng.choice([f"Then {name} {get} {k} more {item}.", f"Later, a friend gives {name} {k} more {item}."])
    return q, f"After that {name} has {v}+{k} = <<{v}+{k}={v + k}>>{v + k} {item}.", v + k


def _sub(rng, name, item, v, get, lose):
    if v < 4:
        return _add(rng, name, item, v, get, lose)
    k = rng.randint(2, max(2, v // 2))
    q = rng.choice([f"Next, {name} {lose} {k} of the {item}.", f"{name} then {lose} {k} {item}."])
    return q, f"Then {name} has {v}-{k} = <<{v}-{k}={v - k}>>{v - k} {item} left.", v - k


def _mul(rng, name, item, v, get, lose):
    if v > 200:
        return _sub(rng, name, item, v, get, lose)
    k = rng.choice([2, 3])
    word = {2: "doubles", 3: "triples"}[k]
    q = f"{rng.choice(_LATER)}, {name} {word} the number of {item}."
    return q, f"{word.capitalize()} means {v}*{k} = <<{v}*{k}={v * k}>>{v * k} {item}.", v * k


def _div(rng, name, item, v, get, lose):
    ks = [k for k in range(2, 7) if v % k == 0 and v // k >= 2]
    if not ks:
        return _add(rng, name, item, v, get, lose)
    k = rng.choice(ks)
    q = rng.choice([f"{name} shares the {item} equally among {k} friends and keeps one share.",
                    f"{name} splits the {item} into {k} equal groups and keeps one group."])
    return q, f"One share is {v}/{k} = <<{v}/{k}={v // k}>>{v // k} {item}.", v // k


_OPS = (_add, _sub, _mul, _div)


def make_problem(topic: str, difficulty: int, rng: random.Random) -> dict:
    """One problem of exactly `difficulty` annotated steps; the last may be a money step."""
    item, box, boxes, place, price, get, lose = CONTEXTS[topic]
    name = rng.choice(_NAMES)
    q, s, v = _first(rng, name, item, box, boxes, place, difficulty)
    q = q.replace("{get}", get)
    qs, ss = [q], [s]
    money = difficulty >= 3 and rng.random() < 0.5
    for _ in range(difficulty - 1 - int(money)):
        for _retry in range(20):  # a story never says the same sentence twice
            q, s, w = rng.choice(_OPS)(rng, name, item, v, get, lose)
            if q not in qs:
                break
        v = w
        qs.append(q)
        ss.append(s)
    if money:
        p = price + rng.randint(0, 3)
        qs.append(f"Each of the {item} sells for ${p}. How much money would {name} get for all of them?")
        ss.append(f"Selling them brings {v}*{p} = $<<{v}*{p}={v * p}>>{v * p}.")
        v = v * p
    else:
        lost = any(" left" in x or "One share" in x for x in ss)
        qs.append(rng.choice([f"How many {item} does {name} have now?"]
                             + ([f"How many {item} are left in the end?"] if lost else [])))
    return {"question": " ".join(qs), "answer": "\n".join(ss) + f"\n#### {v}", "topic": topic,
            "difficulty": difficulty}


def sample_problems(n: int = 200, *, seed: int = 0, topics=TOPICS, difficulties=DIFFICULTIES) -> list[dict]:
    """`n` records {question, answer, topic, difficulty}, topics and difficulties cycled evenly."""
    rng = random.Random(seed)
    topics, difficulties = list(topics), list(difficulties)
    out = []
    for i in range(n):
        out.append(make_problem(topics[i % len(topics)], difficulties[(i // len(topics)) % len(difficulties)], rng))
    rng.shuffle(out)
    return out
