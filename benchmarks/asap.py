"""ASAP-AES as the essay benchmarks read it: the rubric score ranges of nea's asap_reader (see the
dataset's SOURCE.md) and the TSV read without quoting, the surrounding quotes stripped."""
from __future__ import annotations

import csv
from pathlib import Path

ASAP_RANGES = {"1": (2, 12), "2": (1, 6), "3": (0, 3), "4": (0, 3), "5": (0, 4), "6": (0, 4),
               "7": (0, 30), "8": (0, 60)}


def read_asap(folder: Path):
    """essay_id, essay_set (str), essay, domain1_score for all 12,978 essays."""
    import pandas as pd

    df = pd.read_csv(Path(folder) / "training_set_rel3.tsv", sep="\t", encoding="latin-1", quoting=csv.QUOTE_NONE)
    df["essay"] = df["essay"].str.strip().str.strip('"')  # QUOTE_NONE keeps the surrounding quotes
    df["essay_set"] = df["essay_set"].astype(str)
    return df[["essay_id", "essay_set", "essay", "domain1_score"]]
