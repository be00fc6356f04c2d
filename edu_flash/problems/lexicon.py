"""Word lists the project writes for problem templates: first names by the pronouns the stories use,
interchangeable objects, topic keywords, number words and the unit facts a student is expected to
know (60 minutes in an hour).

Names are detected only when they are listed here with one clear gender, so a story's "she" still
fits after a swap; names that are also words or months (Mark, May, Rose) and names used for
several genders (Sam, Alex, Jordan) are left as they are. Objects are swapped only inside a group
whose members behave the same in arithmetic (fruit, not animals: legs differ).
"""
from __future__ import annotations

import re
from fractions import Fraction

# ------------------------------------------------------------------ names
# Detection lists: names GSM8K-style stories use, with one gender. Sampling lists: what new problems
# get, drawn from many cultures.
FEMALE_DETECT = """Natalia Betty Julie Mary Sarah Lisa Martha Janet Carla Anna Jane Emily Jill Sally Karen Jenny Rachel
Susan Tina Julia Maria Alice Lucy Jessica Amanda Annie Lily Amy Monica Beth Jenna Nancy Megan Katie Mandy Kate
Carrie Kayla Hannah Kendra Sara Gina Janice Emma Luna Stephanie Kylie Ella Nicole Elsa Anne Rebecca Michelle Angela
Tiffany Peggy Talia Tara Becky Brenda Veronica Donna Dorothy Diane Danielle Barbara Brittany Bella Samantha Ann
Madeline Helen Pam Tanya Sandra Cindy Linda Stacy Rita Laura Haley Allison Kristin Maggie Kaydence Jennifer Mabel
Sabrina Cathy Fiona Nina Clara Claire Jasmine Melissa Olivia Theresa Polly Shelly Wendi Susie Greta Sophie Lola Jen
Maya Wendy Leila Cara Christine Lulu Hillary Marcy Sheila Natalie Gloria Emily Abigail Abby Ashley Aubrey Audrey
Ava Bianca Brooke Caroline Cassie Charlotte Chloe Cynthia Daphne Debra Delilah Eleanor Elena Eliza Elizabeth
Ellen Erica Erin Esther Eva Evelyn Felicity Francesca Gabriella Gemma Gretchen Harriet Heather Holly Irene
Isabel Isabella Jackie Jacqueline Janelle Janet Jasmine Jeanette Jocelyn Josephine Joyce Judy Kaitlyn Karina
Kathy Katherine Katrina Kendall Kimberly Kira Krista Layla Lena Leah Lila Lindsay Lorraine Louise Lydia Mackenzie
Madison Marissa Marie Marilyn Melanie Mia Millie Miriam Molly Naomi Nora Paige Patricia Paula Penelope Phoebe
Priscilla Rachel Rebekah Renee Rosa Ruth Sabrina Sadie Selena Shannon Sharon Sienna Sofia Stella Tamara Teresa
Tessa Trisha Ursula Valerie Vanessa Victoria Violet Vivian Yolanda Zoe Zoey Aisha Fatima Mei Priya Amara Keiko""".split()
MALE_DETECT = """John James Bob Tom Mike Peter Jack Matt Jerry Harry Jim Joe Billy Jason Frank Steve Michael Andrew
Paul Max Carl Ben Kevin Jacob Ryan Jake Tony Ken Jimmy Greg Tim Kyle Adam George Brian Jeff Rick Andy Josh Randy
Manny David Gerald Dave William Fred Patrick Marcus Henry Thomas Leo Roger Bobby Pete Caleb Simon Jeremy Robert
Jose Brad Carlos Alan Daniel Ted Joey Barry Johnny Lucas Rob Neil Tommy Phil Oliver Samuel Tyler Connor Brandon
Jayden Gary Joseph Anthony Ron Diego Aaron Luke Toby Ralph Justin Kenny Eric Trevor Sammy Juan Steven Dan Hank
Jerome Bruce Maurice Richard Mario Derek Ivan Kenneth Nathan Charles Freddy Ernie Hans Larry Albert Olaf Zachary
Danny Benjamin Shane Joel Marco Ahmed Todd Mitchell Alexander Arthur Bernard Calvin Cameron Chad Clark Colin Curtis
Dennis Dominic Douglas Dustin Edward Edwin Elijah Elliot Emmanuel Ethan Felix Francis Gabriel Gavin Gordon Harold
Hector Isaac Jared Jasper Jeffrey Jesse Jonathan Jonah Julian Keith Kurt Lance Lawrence Leon Leonard Lewis Liam
Logan Louis Malcolm Marvin Matthew Mason Micah Nathaniel Nick Noah Omar Oscar Owen Raymond Reggie Rodney Roy Russell
Scott Sean Seth Spencer Stanley Stuart Theo Theodore Travis Victor Vincent Walter Wayne Wesley Xavier Zack Hiroshi
Rahul Kwame Tariq Mateo Rafael""".split()
FEMALE = ("Amara Ava Chloe Dalia Elena Fatima Grace Hana Ines Jia Kemi Leila Maya Nadia Olga Priya Rosa Sofia Tara "
          "Uma Wen Yara Zoe Aisha Bianca Carmen Divya Esme Freya Gita Hiba Ingrid Jana Kira Lina Mei Nora Oksana "
          "Paula Rania Selin Thandi Valeria Yuki Zainab").split()
MALE = ("Adam Ben Carlos Dev Elias Farid Gabe Hiro Ibrahim Jonas Kofi Luis Mateo Noah Omar Pavel Quinn Rafael Sami "
        "Tariq Umar Victor Wei Yusuf Zane Arjun Bruno Chen Diego Emre Felix Hugo Ivan Jamal Kenji Leon Marco Nikhil "
        "Oscar Pedro Raul Stefan Theo Tomas Viktor").split()
_GENDER = {**{n: "f" for n in FEMALE_DETECT + FEMALE}, **{n: "m" for n in MALE_DETECT + MALE}}
# both genders, or also an everyday word / month / place: never swapped
_NOT_NAMES = {"Sam", "Alex", "Jordan", "Casey", "Taylor", "Jamie", "Jessie", "Drew", "Dana", "Kim", "Jean", "Terry",
              "Tracy", "Kelly", "Jess", "Chris", "Pat", "Quinn", "Mark", "Bill", "May", "June", "April", "August",
              "Rose", "Grace", "Dawn", "Daisy", "Miles", "Hunter", "Candy", "Ivy", "Olive", "Art", "Sydney", "Georgia",
              "Austin", "Carson", "Parker", "Jackson", "Will", "Joy", "Summer", "Page", "Penny", "Ruby", "Pearl", "Hope",
              "Faith", "Sky", "Dallas", "Chase", "Grant", "Cody", "Dean", "Jan", "Jay", "Jude", "Bert", "Ali", "Lou"}
for _n in _NOT_NAMES:
    _GENDER.pop(_n, None)


def name_gender(word: str) -> str | None:
    """'f' / 'm' for a first name listed with one gender, else None."""
    return _GENDER.get(word)


def names_of(gender: str) -> list[str]:
    return [n for n in (FEMALE if gender == "f" else MALE) if n not in _NOT_NAMES]


# ------------------------------------------------------------------ objects
# (singular, plural) groups whose members are interchangeable in a story's arithmetic
OBJECT_GROUPS = {
    "fruit": [("apple", "apples"), ("pear", "pears"), ("peach", "peaches"), ("plum", "plums"), ("mango", "mangoes"),
              ("lemon", "lemons"), ("banana", "bananas")],
    "baked goods": [("cookie", "cookies"), ("muffin", "muffins"), ("cupcake", "cupcakes"), ("brownie", "brownies"),
                    ("bagel", "bagels")],
    "stationery": [("pencil", "pencils"), ("pen", "pens"), ("marker", "markers"), ("crayon", "crayons"),
                   ("eraser", "erasers")],
    "flowers": [("tulip", "tulips"), ("daisy", "daisies"), ("lily", "lilies"), ("sunflower", "sunflowers"),
                ("orchid", "orchids")],
    "vegetables": [("carrot", "carrots"), ("potato", "potatoes"), ("tomato", "tomatoes"), ("onion", "onions"),
                   ("cucumber", "cucumbers")],
    "small toys": [("marble", "marbles"), ("sticker", "stickers"), ("bead", "beads"), ("button", "buttons")],
}
OBJECT_WORDS = {w: (g, i) for g, items in OBJECT_GROUPS.items() for i, pair in enumerate(items) for w in pair}
# a group word right before one of these is part of a compound ("apple pie", "pen pal"): the group stays
COMPOUND_NEXT = set("""pie pies tree trees juice sauce orchard orchards jar jars dough cider bread cake cakes seed seeds
farm farms stand stands shop shops store stores pal pals patch patches field fields plant plants bush bushes garden
gardens sheet sheets cutter cutters crumble crumbles salad salads soup peel peels vine vines bag bags press""".split())


# ------------------------------------------------------------------ topics
TOPIC_RULES = [  # first match wins; a problem with no match is "counting"
    ("percentages", re.compile(r"%|\bpercent(age)?s?\b", re.I)),
    ("fractions", re.compile(r"\b(half|halves|fractions?|thirds|quarters|fourths|fifths)\b|\b\d+/\d+\b|"
                             r"\b(a|one|two|three|four)[ -](third|quarter|fourth|fifth|sixth|eighth)s?\b", re.I)),
    ("ages", re.compile(r"\byears? old\b|\bages?\b|\b(older|younger) than\b|\bbirthdays?\b", re.I)),
    ("rates", re.compile(r"\bper (hour|minute|second|day|week|mile)\b|\bmph\b|\bspeed\b|\brates?\b|\ban hour\b",
                         re.I)),
    ("measurement", re.compile(r"\b(miles?|km|kilomet(er|re)s?|met(er|re)s?|feet|foot|inch(es)?|yards?|pounds?|kg|"
                               r"kilograms?|grams?|ounces?|lit(er|re)s?|gallons?|cups?|quarts?|pints?|square|area|"
                               r"length|width|weighs?|weight)\b", re.I)),
    ("time", re.compile(r"\b(hours?|minutes?|days?|weeks?|months?|years?|seconds)\b", re.I)),
    ("money", re.compile(r"\$|\b(dollars?|cents?|prices?|costs?|pay|pays|paid|earns?|earned|spends?|spent|buys?|"
                         r"bought|sells?|sold|profit|saves?|saved|salary|wages?)\b", re.I)),
]
DEFAULT_TOPIC = "counting"


def infer_topic(problem: str) -> str:
    """The first topic whose words the problem uses (percentages before money: a discount is a percentage)."""
    for topic, rule in TOPIC_RULES:
        if rule.search(problem):
            return topic
    return DEFAULT_TOPIC


# ------------------------------------------------------------------ numbers a student knows without being told
NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
                "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
                "thousand": 1000, "million": 1000000, "dozen": 12, "dozens": 12, "half": 2, "halves": 2, "twice": 2,
                "double": 2, "doubles": 2, "doubled": 2, "pair": 2, "pairs": 2, "both": 2, "twins": 2, "triple": 3,
                "triples": 3, "tripled": 3, "thrice": 3, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
                "fourth": 4, "fourths": 4, "fifth": 5, "fifths": 5, "sixth": 6, "seventh": 7, "eighth": 8,
                "ninth": 9, "tenth": 10, "quadruple": 4, "couple": 2, "decade": 10, "century": 100, "triplets": 3,
                "triangle": 3, "square": 4, "weekend": 2}
# a constant the solution may use when one of these words is in the problem (units a student knows)
UNIT_FACTS = {  # whole words (a plural "s"/"es" may follow); "." matches any problem
    60: r"hours?|minutes?|seconds?|hrs?|mins?|mph",
    24: r"days?|hours?|daily",
    7: r"weeks?|days?|weekly",
    30: r"months?|days?|monthly",
    31: r"months?|days?",
    4: r"weeks?|months?|quarters?|gallons?|quarts?|cups?|legs?|wheels?|tires?|seasons?|legged",
    12: r"months?|years?|dozens?|foot|feet|inch(es)?|eggs?|hours?|clock|yearly|annual(ly)?",
    52: r"weeks?|years?|cards?|decks?|yearly|annual(ly)?",
    365: r"years?|days?|yearly|annual(ly)?",
    100: r"%|percent(age)?|cents?|centimet(er|re)s?|cm|dollars?|century|met(er|re)s?",
    1000: r"thousands?|kilo\w*|km|kg|grams?|lit(er|re)s?|ml|met(er|re)s?|millilit(er|re)s?",
    16: r"pounds?|ounces?|oz|gallons?|cups?|lbs?",
    8: r"cups?|ounces?|oz|pints?|gallons?|octopus(es)?|spiders?",
    2: r"half|halves|twice|double[ds]?|pairs?|both|two|bicycles?|bikes?|legs?|shoes?|socks?|gloves?|eyes?|ears?|"
       r"hands?|feet|wheels?|seconds?|twins?",
    3: r"thirds?|triple[ds]?|tricycles?|yards?|feet|foot|three|triplets?",
    5280: r"miles?|feet|foot",
    36: r"yards?|inch(es)?",
    10: r"decades?|dimes?|ten",
    25: r"quarters?",
    5: r"nickels?|five",
    6: r"half a dozen|half-dozen|insects?",
    Fraction(1, 4): r"quarters?",
    Fraction(1, 10): r"dimes?",
    Fraction(1, 20): r"nickels?",
    Fraction(1, 100): r"penny|pennies|cents?|%|percent(age)?",
    1: r".",  # "one more", "the whole": always allowed
    0: r".",
}
_UNIT_FACT_RE = {Fraction(k): re.compile(v if v == "." else rf"(?<![a-z])(?:{v})(?![a-z])", re.I)
                 for k, v in UNIT_FACTS.items()}


def known_constant(value, problem: str) -> bool:
    """A number a student can use without the problem stating it: a number word in the problem
    ("three", "half" -> 2 or 0.5, "a dozen") or a unit fact whose unit the problem names (60 with hours)."""
    v = Fraction(value)
    words = set(re.findall(r"[a-z]+", problem.lower()))
    for w in words:
        n = NUMBER_WORDS.get(w)
        if n is not None and (v == n or (n and v == Fraction(1, n) and w in _FRACTION_WORDS)):
            return True
    rule = _UNIT_FACT_RE.get(v)
    return bool(rule and rule.search(problem))


_FRACTION_WORDS = {"half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth", "fifths",
                   "sixth", "seventh", "eighth", "ninth", "tenth"}
