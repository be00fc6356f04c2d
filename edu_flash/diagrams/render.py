"""Built-in procedural diagrams drawn with PIL: labelled sample data for demos, tests and benchmarks,
so the task trains and evaluates offline with no downloaded data set.

Each class varies size, position, rotation and labels; drawing happens on a large canvas and is
downsampled, so strokes stay antialiased at 16-64 px.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CLASSES = ("right_triangle", "circle_radius", "bar_chart", "number_line", "fraction_circle", "clock_face")
_CANVAS = 128


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _ink(rng, colour: bool):
    if not colour:
        return (0, 0, 0)
    return tuple(int(v) for v in rng.integers(0, 150, 3))


def _rot(pts, angle, cx, cy):
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts]


def _triangle(d, rng, ink, W):
    a, b = rng.uniform(0.35, 0.7) * W, rng.uniform(0.35, 0.7) * W
    cx, cy = W / 2 + rng.uniform(-8, 8), W / 2 + rng.uniform(-8, 8)
    pts = [(cx - a / 2, cy + b / 2), (cx + a / 2, cy + b / 2), (cx - a / 2, cy - b / 2)]  # right angle at pts[0]
    m = 0.12 * min(a, b)
    sq = [(pts[0][0], pts[0][1] - m), (pts[0][0] + m, pts[0][1] - m), (pts[0][0] + m, pts[0][1])]
    ang = rng.uniform(0, 2 * math.pi)
    pts, sq = _rot(pts, ang, cx, cy), _rot(sq, ang, cx, cy)
    d.polygon(pts, outline=ink, width=4)
    d.line(sq, fill=ink, width=3)
    labels = [str(int(rng.integers(2, 13))), str(int(rng.integers(2, 13))), "?"]
    for (p, q), t in zip([(0, 1), (0, 2), (1, 2)], labels):
        d.text(((pts[p][0] + pts[q][0]) / 2, (pts[p][1] + pts[q][1]) / 2), t, fill=ink, font=_font())


def _circle(d, rng, ink, W):
    r = rng.uniform(0.22, 0.4) * W
    cx, cy = W / 2 + rng.uniform(-10, 10), W / 2 + rng.uniform(-10, 10)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ink, width=4)
    ang = rng.uniform(0, 2 * math.pi)
    ex, ey = cx + r * math.cos(ang), cy + r * math.sin(ang)
    d.line([(cx, cy), (ex, ey)], fill=ink, width=3)
    d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=ink)
    label = rng.choice(["r", f"{int(rng.integers(2, 20))} cm", f"r={int(rng.integers(1, 10))}"])
    d.text(((cx + ex) / 2 + 4, (cy + ey) / 2 - 12), label, fill=ink, font=_font())


def _bars(d, rng, ink, W):
    n = int(rng.integers(3, 7))
    x0, y0 = rng.uniform(12, 24), W - rng.uniform(12, 24)
    w, h = W - x0 - rng.uniform(8, 16), y0 - rng.uniform(8, 20)
    d.line([(x0, y0 - h), (x0, y0), (x0 + w, y0)], fill=ink, width=4)
    bw = w / n
    for i in range(n):
        bh = rng.uniform(0.15, 0.95) * h
        d.rectangle([x0 + i * bw + bw * 0.2, y0 - bh, x0 + (i + 1) * bw - bw * 0.2, y0], fill=ink)
        d.text((x0 + i * bw + bw * 0.35, y0 + 2), chr(65 + i), fill=ink, font=_font())


def _number_line(d, rng, ink, W):
    y = W / 2 + rng.uniform(-20, 20)
    x0, x1 = rng.uniform(6, 16), W - rng.uniform(6, 16)
    d.line([(x0, y), (x1, y)], fill=ink, width=4)
    for s in (-1, 1):  # arrow heads
        tip = x1 if s == 1 else x0
        d.polygon([(tip, y), (tip - s * 10, y - 6), (tip - s * 10, y + 6)], fill=ink)
    n, start = int(rng.integers(4, 9)), int(rng.integers(-5, 5))
    xs = [x0 + 12 + i * (x1 - x0 - 24) / (n - 1) for i in range(n)]
    for i, x in enumerate(xs):
        d.line([(x, y - 7), (x, y + 7)], fill=ink, width=3)
        d.text((x - 3, y + 10), str(start + i), fill=ink, font=_font())
    px = xs[int(rng.integers(0, n))]
    d.ellipse([px - 6, y - 6, px + 6, y + 6], fill=ink)


def _fraction(d, rng, ink, W):
    r = rng.uniform(0.25, 0.42) * W
    cx, cy = W / 2 + rng.uniform(-8, 8), W / 2 + rng.uniform(-8, 8)
    k = int(rng.integers(2, 9))
    filled = int(rng.integers(1, k))
    a0 = rng.uniform(0, 360)
    box = [cx - r, cy - r, cx + r, cy + r]
    for i in range(k):
        if i < filled:
            d.pieslice(box, a0 + i * 360 / k, a0 + (i + 1) * 360 / k, fill=tuple(min(255, c + 110) for c in ink))
    d.ellipse(box, outline=ink, width=4)
    for i in range(k):
        a = math.radians(a0 + i * 360 / k)
        d.line([(cx, cy), (cx + r * math.cos(a), cy + r * math.sin(a))], fill=ink, width=3)


def _clock(d, rng, ink, W):
    r = rng.uniform(0.3, 0.45) * W
    cx, cy = W / 2 + rng.uniform(-6, 6), W / 2 + rng.uniform(-6, 6)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ink, width=4)
    for i in range(12):
        a = math.radians(i * 30)
        inner = 0.78 if i % 3 == 0 else 0.86
        d.line([(cx + inner * r * math.sin(a), cy - inner * r * math.cos(a)),
                (cx + r * math.sin(a), cy - r * math.cos(a))], fill=ink, width=3)
    hour, minute = int(rng.integers(0, 12)), int(rng.integers(0, 12)) * 5
    for frac, length, width in ((hour / 12 + minute / 720, 0.5, 6), (minute / 60, 0.8, 3)):
        a = 2 * math.pi * frac
        d.line([(cx, cy), (cx + length * r * math.sin(a), cy - length * r * math.cos(a))], fill=ink, width=width)


_DRAW = dict(zip(CLASSES, (_triangle, _circle, _bars, _number_line, _fraction, _clock)))
_TILT = {"bar_chart": 12, "number_line": 25}  # degrees; the round and triangular ones rotate freely inside


def render(kind: str, size: int = 32, *, seed: int | None = None, rng=None, colour: bool = False):
    """One diagram of class `kind` as an RGB PIL image of size x size."""
    import numpy as np
    from PIL import Image, ImageDraw

    if kind not in _DRAW:
        from ..core.errors import ConfigError

        raise ConfigError(f"unknown diagram class {kind!r}; built-in classes: {list(CLASSES)}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    img = Image.new("RGB", (_CANVAS, _CANVAS), "white")
    _DRAW[kind](ImageDraw.Draw(img), rng, _ink(rng, colour), _CANVAS)
    if kind in _TILT:
        img = img.rotate(float(rng.uniform(-_TILT[kind], _TILT[kind])), resample=Image.BILINEAR, fillcolor="white")
    return img.resize((size, size), Image.LANCZOS)


def sample_diagrams(n_per_class: int = 100, size: int = 32, *, seed: int = 0, classes=CLASSES,
                    colour: bool = False) -> list[dict]:
    """Records {"image": PIL image, "label": class} ready for `DiagramDiffusion.finetune`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [{"image": render(k, size, rng=rng, colour=colour), "label": k}
            for _ in range(n_per_class) for k in classes]


def write_image_folder(folder: str | os.PathLike, n_per_class: int = 100, size: int = 32, *, seed: int = 0,
                       colour: bool = False) -> Path:
    """The same diagrams as PNG files in one subfolder per class (the image-folder data layout)."""
    folder = Path(folder)
    for i, rec in enumerate(sample_diagrams(n_per_class, size, seed=seed, colour=colour)):
        (folder / rec["label"]).mkdir(parents=True, exist_ok=True)
        rec["image"].save(folder / rec["label"] / f"{i:05d}.png")
    return folder
