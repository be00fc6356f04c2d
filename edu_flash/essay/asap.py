"""ASAP-AES (The Hewlett Foundation: Automated Essay Scoring, Kaggle 2012) as edu-flash reads it.

The TSV is cp1252 with a few raw UTF-8 quote sequences and one unbalanced quote (essay 10534), so
it is read as latin-1 without quote processing and the surrounding quotes are stripped: all 12,978
essays. The rubric ranges are those of nea's asap_reader (see the dataset's SOURCE.md).
"""
from __future__ import annotations

import csv
from pathlib import Path

ASAP_RANGES = {"1": (2, 12), "2": (1, 6), "3": (0, 3), "4": (0, 3), "5": (0, 4), "6": (0, 4),
               "7": (0, 30), "8": (0, 60)}


def read_asap(path):
    """essay_id, essay_set (str), essay, domain1_score; `path` is training_set_rel3.tsv or its folder."""
    import pandas as pd

    path = Path(path)
    tsv = path / "training_set_rel3.tsv" if path.is_dir() else path
    df = pd.read_csv(tsv, sep="\t", encoding="latin-1", quoting=csv.QUOTE_NONE)
    df["essay"] = df["essay"].str.strip().str.strip('"')  # QUOTE_NONE keeps the surrounding quotes
    df["essay_set"] = df["essay_set"].astype(str)
    return df[["essay_id", "essay_set", "essay", "domain1_score"]]
