"""The concept table of the synthetic world: names, real-world looks, context and frequency.

Every concept looks the way a person would describe it ("a lime is small, round and green";
"water is blue and wavy"), so that attribute text written from general knowledge (an LLM's
prompt) matches the rendering (DESIGN.md §3). Things sit on plausible stuff (``hosts``: boat on
water, cloud on sky, car on road), which is what CAA's pixel-to-class association uses.

Long tail: things are drawn with Zipf weights ``1 / (zipf_rank + 1)`` (thesis Table 4.8 groups
head / mid / tail classes by pixel ratio; the measured ratios are written to ``objectInfo150.txt``).
Stuff frequencies follow from the scene weights in :mod:`.render`.

Held-out **unseen** concepts (thesis 5.2.1) are rendered in both splits but never named in any
caption and map to ``ignore`` in the ``seen`` training vocabulary; each shares its attributes with
seen concepts (lime: green like grass, round like an orange) so that attribute prompts can transfer.

Benchmark vocabularies (mirrors of the six thesis benchmarks) are built by
:func:`build_vocabularies`; the choices are documented there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

RGB = tuple[int, int, int]

#: Pixel extent of a thing as a fraction of the image side, per size word.
SIZE_RANGES: dict[str, tuple[float, float]] = {
    "tiny": (0.07, 0.10),
    "small": (0.10, 0.16),
    "medium": (0.17, 0.27),
    "large": (0.28, 0.42),
}


@dataclass(frozen=True)
class Concept:
    """One class of the synthetic world and how it looks.

    ``colours`` are the base and secondary colour of the ``texture`` pattern; ``shape`` is the
    silhouette primitive of a thing (stuff fills regions); ``hosts`` lists the stuff a thing may
    sit on; ``generic`` is the noun captions use when the name is not said (always, if unseen).
    """

    id: int
    name: str
    kind: str  # "stuff" | "thing"
    colours: tuple[RGB, RGB]
    colour_word: str
    texture: str
    texture_word: str
    shape: str | None = None
    shape_word: str | None = None
    size: str = "large"
    aspect: float = 1.0  # width / height of the shape box
    material: str | None = None
    hosts: tuple[str, ...] = ()
    unseen: bool = False
    parent: str | None = None  # coarse (syn150) class; None = itself
    generic: str = "object"
    zipf_rank: int = 0
    extra_words: tuple[str, ...] = field(default_factory=tuple)

    @property
    def coarse_name(self) -> str:
        return self.parent or self.name

    def attribute_words(self) -> dict[str, str]:
        """Attribute words a person would use for this concept (colour, shape, size, texture, material)."""
        words = {"colour": self.colour_word, "texture": self.texture_word}
        if self.kind == "thing":
            words["size"] = self.size
            words["shape"] = self.shape_word or ""
        if self.material:
            words["material"] = self.material
        return {key: value for key, value in words.items() if value}

    def describe(self) -> str:
        """A one-line common-knowledge description, e.g. ``"a lime is small, round and green"``."""
        words = self.attribute_words()
        parts = [words[key] for key in ("size", "shape", "colour", "texture") if key in words]
        article = "an" if self.name[0] in "aeiou" else "a"
        subject = f"{article} {self.name} is" if self.kind == "thing" else f"{self.name} is"
        return f"{subject} {', '.join(parts[:-1])} and {parts[-1]}" if len(parts) > 1 else f"{subject} {parts[0]}"

    def to_dict(self) -> dict:
        record = asdict(self)
        record["colours"] = [list(colour) for colour in self.colours]
        record["hosts"] = list(self.hosts)
        record["extra_words"] = list(self.extra_words)
        return record


def _stuff(
    name, colours, colour_word, texture, texture_word, material=None, *, unseen=False, parent=None, generic="ground"
):
    return dict(
        name=name,
        kind="stuff",
        colours=colours,
        colour_word=colour_word,
        texture=texture,
        texture_word=texture_word,
        material=material,
        unseen=unseen,
        parent=parent,
        generic=generic,
    )


def _thing(
    name,
    colours,
    colour_word,
    texture,
    texture_word,
    shape,
    shape_word,
    size,
    hosts,
    *,
    aspect=1.0,
    material=None,
    unseen=False,
    parent=None,
    generic="object",
):
    return dict(
        name=name,
        kind="thing",
        colours=colours,
        colour_word=colour_word,
        texture=texture,
        texture_word=texture_word,
        shape=shape,
        shape_word=shape_word,
        size=size,
        hosts=tuple(hosts),
        aspect=aspect,
        material=material,
        unseen=unseen,
        parent=parent,
        generic=generic,
    )


# Stuff first (ids 0..16), then things in Zipf order (rank = position among things).
_STUFF_SPECS = [
    _stuff("sky", ((125, 185, 235), (200, 225, 248)), "light blue", "gradient", "smooth", generic="background"),
    _stuff("wall", ((214, 204, 184), (196, 186, 166)), "beige", "noise", "plain", "plaster", generic="surface"),
    _stuff("grass", ((72, 150, 50), (40, 108, 34)), "green", "noise", "grassy", generic="ground"),
    _stuff("road", ((78, 78, 84), (58, 58, 63)), "dark grey", "speckle", "rough", "asphalt", generic="ground"),
    _stuff("floor", ((158, 108, 64), (122, 80, 42)), "brown", "stripes_h", "striped", "wood", generic="ground"),
    _stuff("water", ((38, 88, 170), (80, 140, 210)), "blue", "waves", "wavy", generic="surface"),
    _stuff("tree", ((30, 88, 36), (62, 128, 44)), "dark green", "blobs", "leafy", "wood", generic="plant"),
    _stuff("building", ((150, 150, 156), (80, 104, 140)), "grey", "windows", "grid", "concrete", generic="structure"),
    _stuff("mountain", ((118, 104, 94), (152, 142, 132)), "brown", "noise", "rocky", "rock", generic="landform"),
    _stuff("sand", ((232, 210, 150), (206, 182, 118)), "beige", "speckle", "grainy", generic="ground"),
    _stuff("table", ((192, 142, 86), (176, 126, 72)), "light brown", "noise", "plain", "wood", generic="furniture"),
    _stuff("snow", ((246, 248, 252), (222, 230, 240)), "white", "speckle", "powdery", generic="ground"),
    _stuff(
        "field", ((222, 182, 62), (186, 146, 38)), "golden", "stripes_v", "striped", generic="ground", parent="grass"
    ),
    _stuff(
        "carpet", ((152, 40, 52), (232, 200, 120)), "red", "dots", "dotted", "fabric", parent="floor", generic="ground"
    ),
    _stuff(
        "brick wall",
        ((172, 76, 56), (206, 196, 184)),
        "red",
        "bricks",
        "brick",
        "brick",
        parent="wall",
        generic="surface",
    ),
    _stuff(
        "sidewalk",
        ((178, 178, 172), (140, 140, 134)),
        "light grey",
        "checker",
        "checkered",
        "stone",
        parent="road",
        generic="ground",
    ),
    _stuff(
        "ice",
        ((196, 228, 242), (160, 206, 232)),
        "pale blue",
        "cracks",
        "glossy",
        "frozen",
        unseen=True,
        generic="ground",
    ),
]

_GROUND_OUT = ("grass", "road", "sand", "snow", "field", "sidewalk", "ice")
_THING_SPECS = [
    _thing(
        "cloud",
        ((250, 250, 253), (212, 218, 230)),
        "white",
        "noise",
        "fluffy",
        "cloud",
        "puffy",
        "large",
        ("sky",),
        aspect=1.7,
        generic="shape",
    ),
    _thing(
        "car",
        ((204, 30, 36), (150, 200, 230)),
        "red",
        "car",
        "shiny",
        "rounded_rect",
        "boxy",
        "medium",
        ("road",),
        aspect=1.9,
        material="metal",
        generic="vehicle",
    ),
    _thing(
        "window",
        ((150, 200, 236), (245, 245, 245)),
        "light blue",
        "grid",
        "grid",
        "rect",
        "square",
        "medium",
        ("wall", "brick wall", "building"),
        material="glass",
        generic="object",
    ),
    _thing(
        "boat",
        ((120, 70, 34), (245, 245, 245)),
        "brown",
        "stripe_top",
        "striped",
        "trapezoid",
        "long",
        "medium",
        ("water",),
        aspect=2.2,
        material="wood",
        generic="vehicle",
    ),
    _thing(
        "sun",
        ((255, 212, 36), (255, 244, 150)),
        "yellow",
        "radial",
        "glowing",
        "circle",
        "round",
        "medium",
        ("sky",),
        generic="shape",
    ),
    _thing(
        "door",
        ((116, 72, 40), (90, 54, 28)),
        "brown",
        "stripes_v",
        "striped",
        "rect",
        "tall",
        "large",
        ("wall", "brick wall", "building"),
        aspect=0.5,
        material="wood",
        generic="object",
    ),
    _thing(
        "plate",
        ((246, 246, 244), (200, 200, 205)),
        "white",
        "rim",
        "plain",
        "circle",
        "round",
        "medium",
        ("table",),
        material="ceramic",
        generic="object",
    ),
    _thing(
        "rock",
        ((128, 128, 124), (92, 92, 90)),
        "grey",
        "noise",
        "rough",
        "hexagon",
        "lumpy",
        "small",
        ("grass", "sand", "snow", "mountain", "field"),
        aspect=1.3,
        material="stone",
        generic="object",
    ),
    _thing(
        "stop sign",
        ((214, 24, 30), (250, 250, 250)),
        "red",
        "solid",
        "plain",
        "octagon",
        "octagonal",
        "small",
        ("road", "sidewalk"),
        material="metal",
        unseen=True,
        generic="sign",
    ),
    _thing(
        "flower",
        ((236, 88, 162), (255, 220, 60)),
        "pink",
        "center",
        "plain",
        "flower",
        "petal-shaped",
        "small",
        ("grass", "field"),
        generic="plant",
    ),
    _thing(
        "cow",
        ((248, 248, 244), (24, 24, 24)),
        "black and white",
        "spots",
        "spotted",
        "ellipse",
        "oval",
        "large",
        ("grass", "field"),
        aspect=1.6,
        generic="animal",
    ),
    _thing(
        "painting",
        ((110, 70, 36), (70, 130, 190)),
        "blue",
        "frame",
        "framed",
        "rect",
        "rectangular",
        "medium",
        ("wall", "brick wall"),
        aspect=1.4,
        material="canvas",
        generic="object",
    ),
    _thing(
        "tire",
        ((26, 26, 28), (60, 60, 64)),
        "black",
        "solid",
        "plain",
        "ring",
        "ring-shaped",
        "small",
        ("road", "sidewalk"),
        material="rubber",
        unseen=True,
        generic="object",
    ),
    _thing(
        "ball",
        ((248, 248, 248), (24, 24, 24)),
        "white",
        "dots",
        "dotted",
        "circle",
        "round",
        "small",
        ("grass", "floor", "carpet", "sand"),
        material="leather",
        generic="toy",
    ),
    _thing(
        "bird",
        ((28, 28, 30), (60, 60, 66)),
        "black",
        "solid",
        "plain",
        "chevron",
        "v-shaped",
        "small",
        ("sky",),
        aspect=1.6,
        generic="animal",
    ),
    _thing(
        "box",
        ((202, 160, 108), (170, 130, 84)),
        "tan",
        "solid",
        "plain",
        "rect",
        "square",
        "medium",
        ("floor", "carpet", "table"),
        material="cardboard",
        generic="object",
    ),
    _thing(
        "lime",
        ((112, 192, 42), (150, 215, 80)),
        "green",
        "radial",
        "smooth",
        "circle",
        "round",
        "small",
        ("table",),
        unseen=True,
        generic="fruit",
    ),
    _thing(
        "clock",
        ((248, 248, 248), (24, 24, 24)),
        "white",
        "rim",
        "plain",
        "circle",
        "round",
        "small",
        ("wall", "brick wall"),
        generic="object",
    ),
    _thing(
        "sheep",
        ((238, 234, 222), (206, 200, 186)),
        "cream",
        "noise",
        "woolly",
        "cloud",
        "puffy",
        "medium",
        ("grass", "field", "snow"),
        aspect=1.4,
        material="wool",
        generic="animal",
    ),
    _thing(
        "orange",
        ((250, 148, 28), (255, 186, 80)),
        "orange",
        "radial",
        "smooth",
        "circle",
        "round",
        "small",
        ("table",),
        generic="fruit",
    ),
    _thing(
        "moon",
        ((238, 236, 214), (210, 208, 190)),
        "pale yellow",
        "solid",
        "plain",
        "crescent",
        "crescent-shaped",
        "medium",
        ("sky",),
        unseen=True,
        generic="shape",
    ),
    _thing(
        "banana",
        ((252, 222, 58), (200, 170, 40)),
        "yellow",
        "solid",
        "smooth",
        "crescent",
        "curved",
        "medium",
        ("table",),
        aspect=1.6,
        generic="fruit",
    ),
    _thing(
        "tomato",
        ((222, 38, 30), (250, 110, 90)),
        "red",
        "radial",
        "shiny",
        "circle",
        "round",
        "small",
        ("table",),
        generic="vegetable",
    ),
    _thing(
        "umbrella",
        ((232, 40, 46), (250, 250, 250)),
        "red and white",
        "stripes_v",
        "striped",
        "half_disc",
        "dome-shaped",
        "medium",
        ("sand",),
        aspect=1.6,
        material="fabric",
        generic="object",
    ),
    _thing(
        "pine tree",
        ((24, 84, 40), (40, 110, 52)),
        "dark green",
        "solid",
        "plain",
        "triangle",
        "triangular",
        "large",
        ("snow", "grass"),
        aspect=0.7,
        generic="plant",
    ),
    _thing(
        "duck",
        ((252, 210, 40), (240, 140, 20)),
        "yellow",
        "solid",
        "plain",
        "ellipse",
        "oval",
        "small",
        ("water",),
        aspect=1.3,
        generic="animal",
    ),
    _thing(
        "pumpkin",
        ((236, 120, 20), (196, 84, 10)),
        "orange",
        "stripes_v",
        "striped",
        "circle",
        "round",
        "medium",
        ("grass", "field"),
        aspect=1.2,
        unseen=True,
        generic="vegetable",
    ),
    _thing(
        "bus",
        ((242, 192, 30), (60, 70, 90)),
        "yellow",
        "bus",
        "striped",
        "rounded_rect",
        "long",
        "large",
        ("road",),
        aspect=2.4,
        material="metal",
        generic="vehicle",
    ),
    _thing(
        "kite",
        ((230, 40, 40), (252, 220, 40)),
        "red and yellow",
        "checker",
        "checkered",
        "diamond",
        "diamond-shaped",
        "small",
        ("sky",),
        aspect=0.8,
        material="fabric",
        generic="toy",
    ),
    _thing(
        "lemon",
        ((252, 230, 60), (230, 206, 40)),
        "yellow",
        "radial",
        "smooth",
        "ellipse",
        "oval",
        "small",
        ("table",),
        aspect=1.35,
        generic="fruit",
    ),
    _thing(
        "zebra",
        ((248, 248, 248), (20, 20, 20)),
        "black and white",
        "stripes_v",
        "striped",
        "ellipse",
        "oval",
        "large",
        ("grass", "field"),
        aspect=1.6,
        unseen=True,
        generic="animal",
    ),
    _thing(
        "traffic cone",
        ((250, 120, 20), (250, 250, 250)),
        "orange",
        "stripes_h",
        "striped",
        "triangle",
        "cone-shaped",
        "small",
        ("road", "sidewalk"),
        aspect=0.7,
        material="plastic",
        generic="object",
    ),
    _thing(
        "balloon",
        ((230, 30, 60), (250, 120, 140)),
        "red",
        "radial",
        "shiny",
        "ellipse",
        "oval",
        "small",
        ("sky",),
        aspect=0.8,
        material="rubber",
        generic="toy",
    ),
    _thing(
        "buoy",
        ((236, 36, 36), (250, 250, 250)),
        "red and white",
        "stripes_h",
        "striped",
        "circle",
        "round",
        "small",
        ("water",),
        material="plastic",
        generic="object",
    ),
    _thing(
        "coin",
        ((214, 172, 52), (246, 216, 110)),
        "gold",
        "radial",
        "shiny",
        "circle",
        "round",
        "tiny",
        ("table",),
        material="metal",
        unseen=True,
        generic="object",
    ),
    _thing(
        "starfish",
        ((242, 128, 56), (255, 190, 130)),
        "orange",
        "dots",
        "dotted",
        "star",
        "star-shaped",
        "small",
        ("sand",),
        generic="animal",
    ),
    _thing(
        "penguin",
        ((22, 22, 26), (250, 250, 250)),
        "black and white",
        "belly",
        "plain",
        "ellipse",
        "oval",
        "small",
        ("snow", "ice"),
        aspect=0.65,
        generic="animal",
    ),
    _thing(
        "watermelon",
        ((56, 140, 50), (24, 84, 30)),
        "green",
        "stripes_v",
        "striped",
        "circle",
        "round",
        "medium",
        ("table", "grass"),
        generic="fruit",
    ),
    _thing(
        "snowman",
        ((252, 252, 252), (30, 30, 30)),
        "white",
        "dots_sparse",
        "dotted",
        "snowman",
        "round",
        "medium",
        ("snow",),
        aspect=0.65,
        material="snow",
        unseen=True,
        generic="figure",
    ),
    _thing(
        "pizza",
        ((232, 176, 64), (196, 40, 30)),
        "orange",
        "dots",
        "dotted",
        "circle",
        "round",
        "medium",
        ("table",),
        generic="food",
    ),
    _thing(
        "donut",
        ((232, 122, 164), (250, 240, 245)),
        "pink",
        "speckle",
        "sprinkled",
        "ring",
        "ring-shaped",
        "small",
        ("table",),
        generic="food",
    ),
    _thing(
        "chessboard",
        ((244, 244, 236), (28, 28, 28)),
        "black and white",
        "checker",
        "checkered",
        "rect",
        "square",
        "medium",
        ("table",),
        material="wood",
        unseen=True,
        generic="board",
    ),
    _thing(
        "tennis ball",
        ((212, 232, 60), (250, 250, 240)),
        "yellow-green",
        "seam",
        "fuzzy",
        "circle",
        "round",
        "tiny",
        ("grass", "floor", "carpet"),
        material="felt",
        parent="ball",
        generic="toy",
    ),
]


def _build_concepts() -> tuple[Concept, ...]:
    concepts = []
    for index, spec in enumerate(_STUFF_SPECS):
        concepts.append(Concept(id=index, zipf_rank=index, **spec))
    for rank, spec in enumerate(_THING_SPECS):
        concepts.append(Concept(id=len(_STUFF_SPECS) + rank, zipf_rank=rank, **spec))
    names = [concept.name for concept in concepts]
    if len(set(names)) != len(names):
        raise ValueError("duplicate concept names")
    known = set(names)
    for concept in concepts:
        unknown = set(concept.hosts) - known
        if unknown:
            raise ValueError(f"{concept.name}: unknown host stuff {sorted(unknown)}")
        if "," in concept.name or ";" in concept.name:
            raise ValueError(f"{concept.name!r}: names must not hold ',' or ';' (synonym separators)")
    return tuple(concepts)


#: The full concept table, id order (stuff then things). Concept id k is label-file value k+1.
CONCEPTS: tuple[Concept, ...] = _build_concepts()
CONCEPT_BY_NAME: dict[str, Concept] = {concept.name: concept for concept in CONCEPTS}
STUFF_IDS: tuple[int, ...] = tuple(c.id for c in CONCEPTS if c.kind == "stuff")
THING_IDS: tuple[int, ...] = tuple(c.id for c in CONCEPTS if c.kind == "thing")
UNSEEN_IDS: tuple[int, ...] = tuple(c.id for c in CONCEPTS if c.unseen)
UNSEEN_NAMES: tuple[str, ...] = tuple(CONCEPTS[i].name for i in UNSEEN_IDS)
NUM_CONCEPTS = len(CONCEPTS)

#: Context rules: thing name -> stuff names it may sit on.
CONTEXT_RULES: dict[str, tuple[str, ...]] = {c.name: c.hosts for c in CONCEPTS if c.kind == "thing"}


#: Attribute names as the prompt pipeline spells them -> key of :meth:`Concept.attribute_words`.
_ATTRIBUTE_KEYS = {
    "color": "colour",
    "colour": "colour",
    "shape": "shape",
    "size": "size",
    "texture": "texture",
    "material": "material",
}


def world_prompt_set(class_names: list[str], fallback_template: str = "a photo of a {}.") -> dict[str, list[str]]:
    """Prompt set ``{class: [prompt]}`` from the world's own look of each concept (``Concept.describe``).

    It stands in for the descriptions of a knowledgeable LLM (GPT-4 in the thesis): what a person
    would say about the concept, and exactly how the world renders it. A class that is not a concept
    (``background``) gets ``fallback_template``.
    """
    return {
        name: [CONCEPT_BY_NAME[name].describe() + "." if name in CONCEPT_BY_NAME else fallback_template.format(name)]
        for name in class_names
    }


def description_agreement(descriptions: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    """How often an LLM's description of a class names the attribute word the world renders.

    ``descriptions``: ``{class: {attribute: text}}`` (the prompt pipeline's output). For every
    attribute the world defines (colour, shape, size, texture, material), ``hit_rate`` is the
    fraction of described concepts whose text contains every word of the concept's attribute
    word (e.g. "light blue" for sky), ``count`` the number checked. A diagnostic of the LLM only:
    it is never used to choose prompts.
    """
    hits: dict[str, list[int]] = {}
    for class_name, per_attribute in descriptions.items():
        concept = CONCEPT_BY_NAME.get(class_name)
        if concept is None:
            continue
        words = concept.attribute_words()
        for attribute, text in per_attribute.items():
            key = _ATTRIBUTE_KEYS.get(str(attribute).lower())
            if key is None or key not in words:
                continue
            found = all(word in str(text).lower() for word in words[key].lower().split())
            counts = hits.setdefault(key, [0, 0])
            counts[0] += int(found)
            counts[1] += 1
    return {key: {"hit_rate": found / total, "count": float(total)} for key, (found, total) in hits.items()}


def thing_zipf_weights(exponent: float = 1.0) -> np.ndarray:
    """Per-concept sampling weight ``1 / (rank + 1)^exponent`` for things (0 for stuff)."""
    weights = np.zeros(NUM_CONCEPTS, dtype=np.float64)
    for concept in CONCEPTS:
        if concept.kind == "thing":
            weights[concept.id] = 1.0 / (concept.zipf_rank + 1) ** exponent
    return weights


# --------------------------------------------------------------------------------------------
# Benchmark vocabularies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """An ordered class list over the synthetic world plus its concept → class lookup.

    ``lookup[k]`` is the class id of concept ``k`` or ``ignore_index``; :meth:`map_labels` applies
    it to a concept-id label map (anything outside ``0..NUM_CONCEPTS-1``, e.g. 255, → ignore).
    """

    name: str
    class_names: tuple[str, ...]
    lookup: np.ndarray
    ignore_index: int
    mirrors: str
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def map_labels(self, concept_labels: np.ndarray) -> np.ndarray:
        concept_labels = np.asarray(concept_labels, dtype=np.int64)
        inside = (concept_labels >= 0) & (concept_labels < len(self.lookup))
        mapped = self.lookup[np.where(inside, concept_labels, 0)]
        return np.where(inside, mapped, self.ignore_index).astype(np.int64)

    def to_dict(self) -> dict:
        return {
            "class_names": list(self.class_names),
            "lookup": self.lookup.tolist(),
            "ignore_index": int(self.ignore_index),
            "mirrors": self.mirrors,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, name: str, record: dict) -> Vocabulary:
        return cls(
            name,
            tuple(record["class_names"]),
            np.asarray(record["lookup"], dtype=np.int64),
            int(record["ignore_index"]),
            record.get("mirrors", ""),
            record.get("description", ""),
        )


def _vocabulary(
    name: str, members: list[tuple[str, list[int]]], ignore_index: int, mirrors: str, description: str
) -> Vocabulary:
    """``members`` = ordered (class name, concept ids) pairs; unlisted concepts → ignore."""
    lookup = np.full(NUM_CONCEPTS, ignore_index, dtype=np.int64)
    for class_id, (_, concept_ids) in enumerate(members):
        lookup[concept_ids] = class_id
    return Vocabulary(name, tuple(n for n, _ in members), lookup, ignore_index, mirrors, description)


#: The things of the VOC-like vocabularies (20, like VOC's 20 object classes; two are unseen).
VOC_THINGS: tuple[str, ...] = (
    "car",
    "bus",
    "boat",
    "bird",
    "cow",
    "sheep",
    "zebra",
    "duck",
    "penguin",
    "kite",
    "balloon",
    "umbrella",
    "traffic cone",
    "stop sign",
    "door",
    "window",
    "clock",
    "box",
    "plate",
    "pine tree",
)
#: Number of most frequent (by Zipf rank) concepts kept by the PC-59-like vocabulary.
PC59_SIZE = 36


def build_vocabularies() -> dict[str, Vocabulary]:
    """The benchmark vocabularies over the world, mirroring the thesis's six test sets + ``seen``.

    - ``syn847`` (A-847): fine, every concept incl. unseen, ignore 65535.
    - ``syn150`` (A-150): coarse, concepts merged into their parent (brick wall→wall, carpet→floor,
      sidewalk→road, field→grass, tennis ball→ball), ignore 255.
    - ``synpc459`` (PC-459): fine, every concept, ignore = number of classes (as PC-459's 459).
    - ``synpc59`` (PC-59): the ``PC59_SIZE`` stuff-and-head-thing concepts (all stuff + the most
      frequent things by Zipf rank, unseen ones included), fine names, rest ignore 255.
    - ``synvoc20`` (VOC-20): the 20 ``VOC_THINGS`` only, everything else ignored (255).
    - ``synvoc21b`` (VOC-21b): the same 20 things + ``background`` (id 20) for every other concept.
    - ``seen`` (training, thesis 5.2.1): every seen concept, unseen concepts → ignore 255.
    """
    all_fine = [(c.name, [c.id]) for c in CONCEPTS]
    parents: dict[str, list[int]] = {}
    for concept in CONCEPTS:
        parents.setdefault(concept.coarse_name, []).append(concept.id)
    things_by_rank = sorted((c for c in CONCEPTS if c.kind == "thing"), key=lambda c: c.zipf_rank)
    pc59_ids = sorted(list(STUFF_IDS) + [c.id for c in things_by_rank[: PC59_SIZE - len(STUFF_IDS)]])
    voc = [(name, [CONCEPT_BY_NAME[name].id]) for name in VOC_THINGS]
    background = [c.id for c in CONCEPTS if c.name not in VOC_THINGS]
    return {
        "syn847": _vocabulary("syn847", all_fine, 65535, "ADE20K-847", "fine: every concept, seen and unseen"),
        "syn150": _vocabulary(
            "syn150", list(parents.items()), 255, "ADE20K-150", "coarse: concepts merged into their parent class"
        ),
        "synpc459": _vocabulary(
            "synpc459",
            all_fine,
            len(all_fine),
            "Pascal-Context-459",
            "fine: every concept; ignore value = number of classes",
        ),
        "synpc59": _vocabulary(
            "synpc59",
            [(CONCEPTS[i].name, [i]) for i in pc59_ids],
            255,
            "Pascal-Context-59",
            f"frequent subset: all stuff + the most frequent things ({PC59_SIZE} classes)",
        ),
        "synvoc20": _vocabulary("synvoc20", voc, 255, "Pascal-VOC-20", "20 things; all else ignored"),
        "synvoc21b": _vocabulary(
            "synvoc21b",
            voc + [("background", background)],
            255,
            "Pascal-VOC-21b",
            "20 things + background (id 20) for every other concept",
        ),
        "seen": _vocabulary(
            "seen",
            [(c.name, [c.id]) for c in CONCEPTS if not c.unseen],
            255,
            "training (seen)",
            "every seen concept; unseen concepts ignored (thesis 5.2.1)",
        ),
    }
