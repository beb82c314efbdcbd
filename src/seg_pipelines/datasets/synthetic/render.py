"""Procedural rendering of one synthetic scene: stuff regions, things on their host stuff, caption.

Everything is vectorised numpy over the image (stuff) or the thing's bounding box (things); the
only Python loops run over regions, things and polygon edges, never over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from seg_pipelines.datasets.synthetic.concepts import (
    CONCEPT_BY_NAME,
    CONCEPTS,
    NUM_CONCEPTS,
    SIZE_RANGES,
    Concept,
    thing_zipf_weights,
)

_THING_WEIGHTS = thing_zipf_weights()
_ID = {concept.name: concept.id for concept in CONCEPTS}

# Scene design (stuff frequencies follow from these weights; things from the Zipf weights).
INDOOR_PROBABILITY = 0.35
OUTDOOR_GROUND_WEIGHTS = {
    "grass": 0.34,
    "road": 0.22,
    "water": 0.18,
    "sand": 0.10,
    "snow": 0.07,
    "field": 0.05,
    "ice": 0.04,
}
SECOND_GROUND = {
    "grass": ("road", "field", "water"),
    "road": ("sidewalk", "grass"),
    "water": ("sand",),
    "sand": ("water",),
    "snow": ("ice",),
    "field": ("grass",),
    "ice": ("snow",),
    "sidewalk": ("road",),
}
MAX_THINGS = 4
#: A thing must keep at least this fraction of the image (after clipping/occlusion) to be drawn / named.
MIN_THING_FRACTION = 0.0025
#: Stuff below this fraction of the image is not mentioned in the caption.
MIN_CAPTION_STUFF_FRACTION = 0.05

# Caption sampling probabilities: attributes are said often, class names less often.
P_NAME_THING = 0.7
P_NAME_STUFF = 0.8
P_ATTRIBUTE = {"size": 0.5, "texture": 0.5, "shape": 0.6, "colour": 0.85, "material": 0.3}
P_CONTEXT = 0.6
P_POSITION = 0.5
_PLAIN_TEXTURES = {"plain"}


@dataclass(frozen=True)
class PlacedThing:
    concept_id: int
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 (clipped to the image)


# --------------------------------------------------------------------------------------------
# Coordinates and noise
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column pixel-centre coordinates, ``float32 size×size`` each (read-only)."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    rows, cols = np.meshgrid(coords, coords, indexing="ij")
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def value_noise(rng: np.random.Generator, height: int, width: int, cells: float) -> np.ndarray:
    """Smooth ``[0, 1]`` noise: a random ``cells``-per-side lattice, bilinearly upsampled."""
    cells_y = max(1, int(round(cells * height / max(height, width))))
    cells_x = max(1, int(round(cells * width / max(height, width))))
    lattice = rng.random((cells_y + 1, cells_x + 1), dtype=np.float32)
    ys = np.linspace(0, cells_y, height, endpoint=False, dtype=np.float32)
    xs = np.linspace(0, cells_x, width, endpoint=False, dtype=np.float32)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    top = lattice[np.ix_(y0, x0)] * (1 - fx) + lattice[np.ix_(y0, x0 + 1)] * fx
    bottom = lattice[np.ix_(y0 + 1, x0)] * (1 - fx) + lattice[np.ix_(y0 + 1, x0 + 1)] * fx
    return top * (1 - fy) + bottom * fy


# --------------------------------------------------------------------------------------------
# Textures: a mixing factor t in [0, 1] between a concept's two colours
# --------------------------------------------------------------------------------------------


def texture_factor(
    texture: str,
    rng: np.random.Generator,
    rows: np.ndarray,
    cols: np.ndarray,
    scale: float,
    local_x: np.ndarray | None = None,
    local_y: np.ndarray | None = None,
) -> np.ndarray:
    """Mixing factor of ``texture`` on pixel coordinates ``rows``/``cols`` (same shape).

    ``scale`` is the pattern's characteristic size in pixels (object size, or the image size for
    stuff); ``local_x``/``local_y`` are the thing's box coordinates in ``[-1, 1]`` for
    object-relative patterns (rim, frame, belly…).
    """
    shape = rows.shape
    phase = rng.random() * 6.2832
    if texture == "solid":
        return np.zeros(shape, np.float32)
    if texture == "noise":
        return value_noise(rng, shape[0], shape[1], cells=4.0)
    if texture == "blobs":
        noise = value_noise(rng, shape[0], shape[1], cells=max(3.0, scale / 6))
        return np.clip((noise - 0.35) * 3, 0, 1)
    if texture == "speckle":
        return 0.35 * value_noise(rng, shape[0], shape[1], cells=3.0) + 0.65 * rng.random(shape, dtype=np.float32)
    if texture == "gradient":
        return np.clip(rows / max(1.0, float(rows.max())), 0, 1)
    if texture in ("stripes_h", "stripes_v"):
        period = max(4.0, scale / 4)
        coordinate = rows if texture == "stripes_h" else cols
        return (np.sin(coordinate * (6.2832 / period) + phase) > 0).astype(np.float32)
    if texture in ("dots", "dots_sparse"):
        spacing = max(5.0, scale / (3.5 if texture == "dots" else 2.2))
        radius = 0.28 if texture == "dots" else 0.16
        shifted_cols = cols + (np.floor(rows / spacing) % 2) * spacing / 2
        dy = (rows / spacing) % 1.0 - 0.5
        dx = (shifted_cols / spacing) % 1.0 - 0.5
        return (dy * dy + dx * dx < radius * radius).astype(np.float32)
    if texture == "checker":
        period = max(4.0, scale / 4)
        return ((np.floor(rows / period) + np.floor(cols / period)) % 2).astype(np.float32)
    if texture == "waves":
        period = max(5.0, scale / 9)
        wave = np.sin(6.2832 * (rows / period + 0.25 * np.sin(cols * 6.2832 / (3 * period) + phase)))
        return np.clip((wave - 0.2) * 2.0, 0, 1)
    if texture == "windows":
        period = max(6.0, scale / 9)
        fy, fx = (rows / period) % 1.0, (cols / period) % 1.0
        return ((fy > 0.25) & (fy < 0.7) & (fx > 0.25) & (fx < 0.75)).astype(np.float32)
    if texture == "bricks":
        height = max(4.0, scale / 14)
        width = 2.2 * height
        course = np.floor(rows / height)
        mortar_row = (rows / height) % 1.0 < 0.2
        mortar_col = ((cols + (course % 2) * width / 2) / width) % 1.0 < 0.1
        return (mortar_row | mortar_col).astype(np.float32)
    if texture == "cracks":
        noise = value_noise(rng, shape[0], shape[1], cells=5.0)
        return (np.abs(noise - 0.5) < 0.03).astype(np.float32) + 0.3 * noise
    # Object-relative patterns need the box coordinates.
    if local_x is None or local_y is None:
        raise ValueError(f"texture {texture!r} needs object coordinates")
    x, y = local_x, local_y
    radius = np.sqrt(x * x + y * y)
    if texture == "radial":  # highlight towards the top left, like a lit sphere
        return np.clip(1 - np.sqrt((x + 0.35) ** 2 + (y + 0.35) ** 2) / 0.9, 0, 1) ** 2
    if texture == "rim":
        return (radius > 0.8).astype(np.float32)
    if texture == "frame":
        return ((np.abs(x) < 0.78) & (np.abs(y) < 0.72)).astype(np.float32)
    if texture == "center":
        return (radius < 0.32).astype(np.float32)
    if texture == "spots":
        noise = value_noise(rng, shape[0], shape[1], cells=3.0)
        return (noise > 0.62).astype(np.float32)
    if texture == "belly":
        return ((x / 0.55) ** 2 + ((y - 0.2) / 0.7) ** 2 < 1).astype(np.float32)
    if texture == "stripe_top":
        return (y < -0.45).astype(np.float32)
    if texture == "car":  # light windows in the upper middle
        return ((y < -0.15) & (y > -0.8) & (np.abs(x) < 0.55)).astype(np.float32)
    if texture == "bus":  # a row of dark windows
        period = max(4.0, scale / 5)
        return ((y > -0.7) & (y < -0.1) & ((cols / period) % 1.0 < 0.6) & (np.abs(x) < 0.9)).astype(np.float32)
    if texture == "grid":  # window panes: a frame and a cross of bars
        return ((np.abs(x) < 0.09) | (np.abs(y) < 0.09) | (np.abs(x) > 0.86) | (np.abs(y) > 0.86)).astype(np.float32)
    if texture == "seam":
        return (np.abs(y - 0.45 * np.sin(3.1416 * x)) < 0.13).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}")


# --------------------------------------------------------------------------------------------
# Shapes: boolean masks on box coordinates x, y in [-1, 1] (y grows downwards)
# --------------------------------------------------------------------------------------------


def polygon_mask(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over pixels (loop over the polygon's edges)."""
    inside = np.zeros(x.shape, dtype=bool)
    previous = vertices[-1]
    for vertex in vertices:
        (x1, y1), (x2, y2) = previous, vertex
        crosses = (y1 > y) != (y2 > y)
        x_at_y = x1 + (y - y1) * (x2 - x1) / (y2 - y1 + 1e-12)
        inside ^= crosses & (x < x_at_y)
        previous = vertex
    return inside


def _regular_polygon(sides: int, rotation: float) -> np.ndarray:
    angles = rotation + np.arange(sides) * 2 * np.pi / sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


_OCTAGON = _regular_polygon(8, np.pi / 8)
_HEXAGON = _regular_polygon(6, 0.0)
_STAR = np.stack(
    [
        np.where(np.arange(10) % 2 == 0, 1.0, 0.42) * np.cos(-np.pi / 2 + np.arange(10) * np.pi / 5),
        np.where(np.arange(10) % 2 == 0, 1.0, 0.42) * np.sin(-np.pi / 2 + np.arange(10) * np.pi / 5) + 0.1,
    ],
    axis=1,
)


def shape_mask(shape: str, x: np.ndarray, y: np.ndarray, aspect: float, rng: np.random.Generator) -> np.ndarray:
    """Silhouette of a primitive on box coordinates (``aspect`` = box width / height)."""
    radius_sq = x * x + y * y
    if shape in ("circle", "ellipse"):
        return radius_sq <= 1.0
    if shape == "rect":
        return (np.abs(x) <= 1.0) & (np.abs(y) <= 1.0)
    if shape == "rounded_rect":
        return x**6 + y**6 <= 1.0
    if shape == "trapezoid":  # boat hull: wide deck, narrow keel
        return (np.abs(x) <= 1.0 - 0.35 * (y + 1.0)) & (np.abs(y) <= 1.0)
    if shape == "triangle":
        return (np.abs(x) <= (y + 1.0) / 2.0) & (y <= 1.0)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= 1.0
    if shape == "octagon":
        return polygon_mask(x, y, _OCTAGON)
    if shape == "hexagon":
        return polygon_mask(x, y, _HEXAGON * (0.85 + 0.15 * rng.random((6, 1))))
    if shape == "star":
        return polygon_mask(x, y, _STAR)
    if shape == "flower":
        angle = np.arctan2(y, x)
        return np.sqrt(radius_sq) <= 0.62 + 0.38 * np.cos(5 * angle)
    if shape == "crescent":
        return (radius_sq <= 1.0) & ((x - 0.45) ** 2 + (y + 0.25) ** 2 > 0.8)
    if shape == "ring":
        return (radius_sq <= 1.0) & (radius_sq >= 0.25)
    if shape == "half_disc":  # dome filling the box, flat side down
        return (x * x + ((y - 1.0) / 2.0) ** 2 <= 1.0) & (y <= 1.0)
    if shape == "chevron":  # a "v" with raised wing tips
        return (np.abs(y - (0.45 - 0.9 * np.abs(x))) < 0.3) & (np.abs(x) <= 1.0)
    if shape == "cloud":
        offsets = rng.uniform(-0.08, 0.08, size=(3, 2))
        blobs = [(-0.48, 0.2, 0.52), (0.0, -0.12, 0.72), (0.48, 0.2, 0.52)]
        mask = np.zeros(x.shape, dtype=bool)
        for (cx, cy, r), (ox, oy) in zip(blobs, offsets):
            mask |= (x - cx - ox) ** 2 + (y - cy - oy) ** 2 <= r * r
        return mask & (y <= 0.75)
    if shape == "snowman":
        wide_x = x * aspect
        return (wide_x**2 + (y - 0.38) ** 2 <= 0.62**2) | (wide_x**2 + (y + 0.52) ** 2 <= 0.44**2)
    raise ValueError(f"unknown shape {shape!r}")


# --------------------------------------------------------------------------------------------
# Stuff layout
# --------------------------------------------------------------------------------------------


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    probabilities = np.asarray([weights[name] for name in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=probabilities / probabilities.sum()))]


def _scene_kind_for(stuff_name: str | None) -> str | None:
    if stuff_name is None:
        return None
    return "indoor" if stuff_name in ("wall", "brick wall", "floor", "carpet", "table") else "outdoor"


def layout_stuff(rng: np.random.Generator, size: int, need: str | None = None) -> tuple[np.ndarray, str]:
    """A stuff-only concept-id map ``int64 size×size`` and the scene kind; ``need`` forces a stuff."""
    rows, cols = _pixel_grid(size)
    kind = _scene_kind_for(need) or ("indoor" if rng.random() < INDOOR_PROBABILITY else "outdoor")
    label = np.empty((size, size), dtype=np.int64)
    if kind == "indoor":
        wall = need if need in ("wall", "brick wall") else ("brick wall" if rng.random() < 0.25 else "wall")
        floor = need if need in ("floor", "carpet") else ("carpet" if rng.random() < 0.28 else "floor")
        floor_line = rng.uniform(0.55, 0.75) * size
        label[:] = _ID[wall]
        label[rows >= floor_line] = _ID[floor]
        if need == "table" or rng.random() < 0.55:
            width = rng.uniform(0.45, 0.8) * size
            left = rng.uniform(0, size - width)
            top = rng.uniform(0.42, 0.62) * size
            height = rng.uniform(0.22, 0.36) * size
            table = (cols >= left) & (cols < left + width) & (rows >= top) & (rows < top + height)
            label[table] = _ID["table"]
        return label, kind

    horizon = rng.uniform(0.35, 0.6) * size + rng.uniform(0.01, 0.03) * size * np.sin(
        cols * rng.uniform(0.03, 0.09) + rng.random() * 6.28
    )
    label[:] = _ID["sky"]
    if need == "mountain" or rng.random() < 0.3:
        period = rng.uniform(0.3, 0.7) * size
        peaks = np.abs(((cols + rng.random() * period) / period) % 1.0 - 0.5) * 2  # triangle wave
        height = rng.uniform(0.12, 0.28) * size
        label[rows >= horizon - height * (1 - peaks)] = _ID["mountain"]
    if need == "tree" or rng.random() < 0.35:
        bumps = value_noise(rng, 1, size, cells=6.0)[0]
        label[rows >= horizon - rng.uniform(0.05, 0.14) * size * (0.4 + bumps)] = _ID["tree"]
    ground_names = list(OUTDOOR_GROUND_WEIGHTS)
    if need in ground_names:
        ground = need
    elif need == "sidewalk":
        ground = "road"
    else:
        ground = _weighted_choice(rng, OUTDOOR_GROUND_WEIGHTS)
    if need == "building" or rng.random() < (0.55 if ground == "road" else 0.2):
        for _ in range(int(rng.integers(1, 4))):
            width = rng.uniform(0.15, 0.35) * size
            left = rng.uniform(-0.1, 1.0) * size - width / 2
            height = rng.uniform(0.18, 0.42) * size
            label[(cols >= left) & (cols < left + width) & (rows >= horizon - height)] = _ID["building"]
    below = rows >= horizon
    label[below] = _ID[ground]
    second = None
    if need == "sidewalk":
        second = "sidewalk"
    elif rng.random() < 0.45:
        options = SECOND_GROUND[ground]
        second = options[int(rng.integers(len(options)))]
    if second is not None:
        if rng.random() < 0.5:  # a slanted split from the horizon down
            anchor = rng.uniform(0.25, 0.75) * size
            slope = rng.uniform(-1.2, 1.2)
            side = cols > anchor + slope * (rows - horizon)
            if rng.random() < 0.5:
                side = ~side
        else:  # a foreground band
            side = rows >= rng.uniform(0.72, 0.88) * size
        label[below & side] = _ID[second]
    return label, kind


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------


def _jittered(colour: tuple[int, int, int], rng: np.random.Generator, amount: int = 12) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.integers(-amount, amount + 1, 3), 0, 255)


def _paint(
    canvas: np.ndarray, where: np.ndarray, concept: Concept, factor: np.ndarray, rng: np.random.Generator
) -> None:
    base, second = _jittered(concept.colours[0], rng), _jittered(concept.colours[1], rng)
    canvas[where] = base + factor[where][:, None] * (second - base)


def _place_thing(
    rng: np.random.Generator,
    concept: Concept,
    stuff_label: np.ndarray,
    image: np.ndarray,
    label: np.ndarray,
    min_pixels: int,
    attempts: int = 4,
) -> PlacedThing | None:
    """Draw ``concept`` on its host stuff (clipped to the host region); None if no placement fits."""
    size = stuff_label.shape[0]
    host_ids = [_ID[name] for name in concept.hosts]
    host = np.isin(stuff_label, host_ids)
    host_pixels = np.flatnonzero(host)
    if host_pixels.size < min_pixels:
        return None
    low, high = SIZE_RANGES[concept.size]
    for _ in range(attempts):
        side = rng.uniform(low, high) * size
        width, height = side * np.sqrt(concept.aspect), side / np.sqrt(concept.aspect)
        centre = host_pixels[int(rng.integers(host_pixels.size))]
        cy, cx = centre // size + 0.5, centre % size + 0.5
        y0, y1 = int(max(0, np.floor(cy - height / 2))), int(min(size, np.ceil(cy + height / 2)))
        x0, x1 = int(max(0, np.floor(cx - width / 2))), int(min(size, np.ceil(cx + width / 2)))
        if y1 <= y0 or x1 <= x0:
            continue
        rows = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
        cols = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
        rows, cols = np.broadcast_arrays(rows, cols)
        local_y, local_x = (rows - cy) / (height / 2), (cols - cx) / (width / 2)
        mask = shape_mask(concept.shape, local_x, local_y, concept.aspect, rng) & host[y0:y1, x0:x1]
        if mask.sum() < min_pixels:
            continue
        factor = texture_factor(concept.texture, rng, rows, cols, side, local_x, local_y)
        _paint(image[y0:y1, x0:x1], mask, concept, factor, rng)
        label[y0:y1, x0:x1][mask] = concept.id
        return PlacedThing(concept.id, (y0, y1, x0, x1))
    return None


def render_scene(
    rng: np.random.Generator,
    image_size: int,
    *,
    required: int | None = None,
    max_things: int = MAX_THINGS,
    return_stuff: bool = False,
) -> tuple[np.ndarray, np.ndarray, str, list[int]]:
    """Render one scene.

    Returns ``(image uint8 H×W×3, label int64 H×W concept ids, caption, present concept ids)``;
    with ``return_stuff`` a fifth item, the stuff-only layout under the things (context checks).
    ``required`` (a concept id) is forced into the scene: a stuff is laid out, a thing is placed
    on a forced host stuff and drawn last so nothing hides it.
    """
    size = int(image_size)
    need = None
    if required is not None:
        required_concept = CONCEPTS[required]
        need = (
            required_concept.name
            if required_concept.kind == "stuff"
            else required_concept.hosts[int(rng.integers(len(required_concept.hosts)))]
        )
    stuff_label, kind = layout_stuff(rng, size, need)
    rows, cols = _pixel_grid(size)
    image = np.empty((size, size, 3), dtype=np.float32)
    for stuff_id in np.unique(stuff_label):
        concept = CONCEPTS[int(stuff_id)]
        factor = texture_factor(concept.texture, rng, rows, cols, 0.6 * size)
        _paint(image, stuff_label == stuff_id, concept, factor, rng)
    label = stuff_label.copy()

    # Things: Zipf-weighted among those whose host stuff is in the scene.
    min_pixels = max(6, int(MIN_THING_FRACTION * size * size))
    stuff_counts = np.bincount(stuff_label.ravel(), minlength=NUM_CONCEPTS)
    weights = _THING_WEIGHTS.copy()
    for concept in CONCEPTS:
        if concept.kind == "thing" and not any(stuff_counts[_ID[h]] >= 4 * min_pixels for h in concept.hosts):
            weights[concept.id] = 0.0
    chosen: list[int] = []
    if required is not None and CONCEPTS[required].kind == "thing":
        weights[required] = 0.0
    number = int(rng.integers(1, max_things + 1))
    available = int((weights > 0).sum())
    if available:
        picks = rng.choice(NUM_CONCEPTS, size=min(number, available), replace=False, p=weights / weights.sum())
        chosen = sorted((int(p) for p in picks), key=lambda i: -SIZE_RANGES[CONCEPTS[i].size][1])
    if required is not None and CONCEPTS[required].kind == "thing":
        chosen.append(int(required))  # drawn last: never occluded
    placed = [p for p in (_place_thing(rng, CONCEPTS[i], stuff_label, image, label, min_pixels) for i in chosen) if p]
    if (
        required is not None
        and CONCEPTS[required].kind == "thing"
        and not any(p.concept_id == required for p in placed)
    ):
        raise RuntimeError(f"could not place required concept {CONCEPTS[required].name!r}")  # pragma: no cover

    image += rng.normal(0.0, 2.0, size=image.shape).astype(np.float32)  # sensor noise
    image_uint8 = np.clip(image, 0, 255).astype(np.uint8)
    counts = np.bincount(label.ravel(), minlength=NUM_CONCEPTS)
    present = [int(i) for i in np.flatnonzero(counts)]
    caption = compose_caption(rng, kind, label, counts, placed, min_pixels)
    if return_stuff:
        return image_uint8, label, caption, present, stuff_label
    return image_uint8, label, caption, present


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _position_words(label_mask: np.ndarray) -> str:
    rows, cols = np.nonzero(label_mask)
    size = label_mask.shape[0]
    cy, cx = rows.mean() / size, cols.mean() / size
    horizontal = "left" if cx < 0.36 else "right" if cx > 0.64 else "middle"
    vertical = "top" if cy < 0.36 else "bottom" if cy > 0.64 else ""
    if vertical and horizontal != "middle":
        return f"at the {vertical} {horizontal}"
    if vertical:
        return f"at the {vertical}"
    return "in the middle" if horizontal == "middle" else f"on the {horizontal}"


def _stuff_noun(concept: Concept, rng: np.random.Generator) -> str:
    if not concept.unseen and rng.random() < P_NAME_STUFF:
        return concept.name
    return f"{concept.colour_word} {concept.generic}"


def _thing_phrase(concept: Concept, rng: np.random.Generator) -> str:
    """``"a small round green fruit"`` / ``"a red striped umbrella"``: attributes, then name or generic noun."""
    words = concept.attribute_words()
    chosen = []
    for key in ("size", "texture", "shape", "colour", "material"):
        word = words.get(key)
        if word and word not in _PLAIN_TEXTURES and rng.random() < P_ATTRIBUTE[key]:
            chosen.append(word)
    if not chosen:
        chosen.append(words["colour"])
    named = not concept.unseen and rng.random() < P_NAME_THING
    noun = concept.name if named else concept.generic
    return _article(" ".join(chosen + [noun]))


def compose_caption(
    rng: np.random.Generator,
    kind: str,
    label: np.ndarray,
    counts: np.ndarray,
    placed: list[PlacedThing],
    min_pixels: int,
) -> str:
    """Caption of a rendered scene. Unseen concepts are described only by their attributes."""
    size = label.shape[0]
    thing_phrases = []
    for thing in placed:
        if counts[thing.concept_id] < min_pixels:
            continue  # occluded by a later thing
        concept = CONCEPTS[thing.concept_id]
        phrase = _thing_phrase(concept, rng)
        if rng.random() < P_CONTEXT:
            y0, y1, x0, x1 = thing.box
            around = label[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1]
            host_counts = np.bincount(around.ravel(), minlength=NUM_CONCEPTS)
            hosts = [CONCEPT_BY_NAME[h] for h in concept.hosts if host_counts[_ID[h]] > 0]
            if hosts:
                host = hosts[int(np.argmax([host_counts[h.id] for h in hosts]))]
                preposition = "in the" if host.name in ("sky", "tree") else "on the"
                phrase += f" {preposition} {_stuff_noun(host, rng)}"
        if rng.random() < P_POSITION:
            phrase += " " + _position_words(label == thing.concept_id)
        thing_phrases.append(phrase)
    stuff_phrases = []
    for stuff_id in np.flatnonzero(counts):
        concept = CONCEPTS[int(stuff_id)]
        if concept.kind != "stuff" or counts[stuff_id] < MIN_CAPTION_STUFF_FRACTION * size * size:
            continue
        adjectives = [
            w
            for w, p in ((concept.colour_word, 0.6), (concept.texture_word, 0.4))
            if w not in _PLAIN_TEXTURES and rng.random() < p
        ]
        noun = _stuff_noun(concept, rng)
        if noun.startswith(concept.colour_word + " ") and concept.colour_word in adjectives:
            adjectives.remove(concept.colour_word)
        stuff_phrases.append(" ".join(adjectives + [noun]))
    rng.shuffle(stuff_phrases)

    def joined(parts: list[str]) -> str:
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    scene = "an indoor scene" if kind == "indoor" else "an outdoor scene"
    template = int(rng.integers(3))
    if not thing_phrases:
        return f"{scene} with {joined(stuff_phrases)}." if stuff_phrases else f"{scene}."
    things = joined(thing_phrases)
    if not stuff_phrases:
        return f"a photo of {things}."
    stuff = joined(stuff_phrases)
    if template == 0:
        return f"a photo of {things}, with {stuff}."
    if template == 1:
        return f"{things}; {scene} with {stuff}."
    return f"{scene} showing {things} and {stuff}."
