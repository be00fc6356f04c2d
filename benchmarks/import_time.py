"""How long `import edu_flash` takes, optionally beside another tree (an older checkout), in one run.

Fresh interpreters, the trees alternating, bytecode cached as in an install (one warm-up import
each, PYTHONDONTWRITEBYTECODE dropped). Prints, per tree, the median of `python -X importtime`'s
cumulative `edu_flash` figure and of the wall time of `python -c "import edu_flash"` beside a bare
interpreter's, the number of modules imported and whether torch / transformers are among them.

    python benchmarks/import_time.py                                   # this tree
    git archive 492789a | tar -x -C /tmp/old && python benchmarks/import_time.py --against /tmp/old
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "diffusers", "datasets", "accelerate")


def _once(tree: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = tree
    run = lambda *a, **kw: subprocess.run([sys.executable, *a], env=env, cwd=tree, check=True, **kw)  # noqa: E731
    t = time.perf_counter()
    run("-c", "import edu_flash")
    wall = time.perf_counter() - t
    t = time.perf_counter()
    run("-c", "pass")
    bare = time.perf_counter() - t
    err = run("-X", "importtime", "-c", "import edu_flash", capture_output=True, text=True).stderr
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "|" in line]
    mods = [r[2].strip() for r in rows if r[1].strip().isdigit()]
    cum = [int(r[1]) for r in rows if r[2].strip() == "edu_flash"][-1] / 1e6
    return {"cum": cum, "wall": wall, "bare": bare, "mods": len(mods), "heavy": sorted(set(mods) & set(HEAVY))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", help="another tree (a folder holding edu_flash/) to time beside this one")
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    trees = {"this tree": str(Path(__file__).resolve().parents[1])}
    if a.against:
        trees["--against"] = str(Path(a.against).resolve())
    for tree in trees.values():
        _once(tree)  # warm-up: writes the bytecode
    res = {k: [] for k in trees}
    for i in range(a.rounds):
        for k in (list(trees) if i % 2 == 0 else list(trees)[::-1]):
            res[k].append(_once(trees[k]))
    for k, rs in res.items():
        med = lambda f: statistics.median(r[f] for r in rs) * 1000  # noqa: E731
        print(f"{k} ({trees[k]}): import edu_flash {med('cum'):.0f} ms (-X importtime, median of {len(rs)}), "
              f"fresh interpreter + import {med('wall'):.0f} ms vs bare interpreter {med('bare'):.0f} ms; "
              f"{rs[-1]['mods']} modules; engines imported: {rs[-1]['heavy'] or 'none'}")


if __name__ == "__main__":
    main()
