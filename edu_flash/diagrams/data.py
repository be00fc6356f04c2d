"""Images in: an image folder (one subfolder per class), or any table core.read_table accepts with an
image column (file paths, PIL images or arrays) and a label column.

Resizing and normalisation use PIL + numpy only (torchvision does not import with every torch build).
Every unreadable image is reported with the file, column and row it came from.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..core.data import Table, check_labels, require_columns
from ..core.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def folder_table(folder: str | os.PathLike) -> Table:
    """An image folder -> a Table of (image path, label = subfolder name)."""
    import pandas as pd

    folder = Path(folder)
    rows = [{"image": str(f), "label": sub.name}
            for sub in _listdir(folder) if sub.is_dir() and not sub.name.startswith(".")
            for f in _listdir(sub) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not rows:
        raise DataError("no images found: expected one subfolder per class holding "
                        f"{'/'.join(IMAGE_SUFFIXES)} files", source=str(folder))
    return Table(pd.DataFrame(rows), str(folder), header_lines=-1)


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as e:  # an unreadable class folder is the user's to fix: say which one
        raise DataError(f"cannot list the folder ({e.strerror or e})", source=str(folder)) from None


def as_table(data) -> Table | object:
    """Folders become Tables here; everything else goes to core.read_table unchanged."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        return folder_table(data)
    return data


def to_array(img, size: int, channels: int):
    """PIL image -> float32 array (C, size, size) in [-1, 1]."""
    import numpy as np
    from PIL import Image

    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.LANCZOS)
    a = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return a[None] if channels == 1 else a.transpose(2, 0, 1).copy()


def to_pil(x):
    """Tensor/array (C, H, W) in [-1, 1] -> PIL image."""
    import numpy as np
    from PIL import Image

    a = np.asarray(x.detach().float().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
    a = ((a.clip(-1, 1) + 1) * 127.5).round().astype(np.uint8)
    return Image.fromarray(a[0], "L") if a.shape[0] == 1 else Image.fromarray(a.transpose(1, 2, 0), "RGB")


def _open(value, base: Path | None):
    import numpy as np
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, np.ndarray):
        a = value.astype(np.float32)
        if a.size == 0 or not np.isfinite(a).all():
            raise ValueError("the array is empty or holds NaN/inf values")
        if a.min() < 0 or a.max() > 255:
            raise ValueError(f"pixel values must be in 0-1 or 0-255, found {a.min():g} to {a.max():g}")
        if a.max() <= 1.0:
            a = a * 255.0
        return Image.fromarray(a.clip(0, 255).astype(np.uint8).squeeze())
    if isinstance(value, dict) and "bytes" in value:  # datasets' Image feature after to_pandas()
        import io

        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if not p.is_absolute() and base is not None:
            p = base / p
        with Image.open(p) as im:
            im.load()
            return im
    raise TypeError(f"expected an image file path, a PIL image or an array, got {type(value).__name__}")


def read_images(table: Table, image_col: str, label_col: str | None, *, size: int, channels: int):
    """-> (arrays, labels or None), or a DataError naming the first bad file/row."""
    require_columns(table, {"image": image_col, **({"label": label_col} if label_col else {})})
    labels = check_labels(table, label_col) if label_col else None
    src = Path(table.source)
    base = src.parent if src.is_file() else None  # relative paths in a csv are relative to the csv
    arrays = []
    for i, v in enumerate(table.df[image_col].tolist()):
        try:
            arrays.append(to_array(_open(v, base), size, channels))
        except Exception as e:  # PIL's UnidentifiedImageError, OSError, TypeError, ...
            raise DataError(f"cannot read image {str(v)[:200]!r} ({type(e).__name__}: {e})", column=image_col,
                            **table.where(i)) from None
    if not arrays:
        raise DataError("no images", source=table.source)
    return arrays, labels


def save_grid(images: list, path, ncols: int | None = None, pad: int = 2) -> Path:
    """A PNG grid of PIL images (row-major, `ncols` per row, white padding)."""
    import math

    from PIL import Image

    if not images:
        from ..core.errors import ConfigError

        raise ConfigError("save_grid needs at least one image")
    ncols = ncols or math.ceil(math.sqrt(len(images)))
    nrows = math.ceil(len(images) / ncols)
    w, h = images[0].size
    grid = Image.new(images[0].mode, (ncols * (w + pad) + pad, nrows * (h + pad) + pad), "white")
    for i, im in enumerate(images):
        grid.paste(im, (pad + (i % ncols) * (w + pad), pad + (i // ncols) * (h + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path
