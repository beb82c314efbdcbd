"""One report of everything the pipelines have produced: ``report.md`` + its HTML rendering.

The report is declarative: ``conf/base/parameters_report.yml`` lists chapters → sections → items
(a markdown table, a CSV table, a JSON file of numbers or a PNG figure, each a path or glob under
the reporting folder). This module only reads what exists on disk when it runs, so
``kedro run --pipelines=report`` works alone; an item that is not there yet is listed as
"not produced yet" with the command that produces it.

Per section the report states the dataset, budget, seeds and hardware, each read from a
*reference*, the first that resolves of a list:

* ``"params:caa.training.iterations"`` — the parameters the section's pipeline ran with, from its run
  record (:mod:`seg_pipelines.engine.provenance`, marked "as run"), else the Kedro parameters as
  configured now (marked "configured now");
* ``"run:dataset.samples_per_split.train"`` — a value of the section pipeline's run record (the env, data
  root and dataset it was made with);
* ``"json:data/08_reporting/lsmseg_curve.json:-1.iteration"`` — a value in a JSON file the pipelines
  wrote (path from the project root, then a dotted key; integers index lists, negative from the end);
* ``"text:…"`` — a literal;
* ``"thesis:table_3_7.FCN+CAA.ADE20K"`` — a number the thesis prints
  (:func:`seg_pipelines.thesis_tables.references`: table, row, column); an unknown one is
  a configuration error.

An item ``{tables: <pipeline>}`` stands for one markdown table per thesis table the pipeline
produces (:func:`seg_pipelines.thesis_tables.tables_of`: ``Table <id>: <title>``, the file matched by
its key), so a new table appears in the report without a line here.

``thesis`` blocks print the thesis's numbers beside ours and say whether the setting is comparable:
``table`` names one of :data:`seg_pipelines.thesis_tables.REPORT_TABLES` (or is a table
``{title, columns, rows}``), or is a list of them; ``directions`` compare the sign of a thesis finding (e.g. CAA's +7.02
mIoU over FCN on ADE20K, ``{minus: ["thesis:…", "thesis:…"]}``) with ours, which is what a
synthetic-world run can reproduce; a direction with ``paired: {runs: <file>_runs.csv, rows: [candidate,
baseline], metric: mIoU}`` also gets its verdict over seeds (the ablation tables' rule:
:func:`seg_pipelines.statistics.paired_comparison` of the two rows' per-seed values, reproduced /
contradicted / unresolved), since a sign of means says nothing inside the noise. The thesis's numbers
live in :mod:`seg_pipelines.thesis_tables` only, not in the section list.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import html
import json
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seg_pipelines import thesis_tables
from seg_pipelines.engine import provenance, tables
from seg_pipelines.statistics import finding_verdict, paired_comparison

MISSING = object()
REPORT_FILES = ("report.md", "report.html")  # never listed as outputs of their own
TABLE_SUFFIXES = (".md", ".csv")
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


class ReportConfigError(ValueError):
    """The report's section list is malformed (names the offending entry)."""


# --- references ------------------------------------------------------------------------------------


def lookup(values: Any, dotted: str) -> Any:
    """``values["a"]["b"][0]`` for ``"a.b.0"``; list indices may be negative; MISSING if absent.

    A key that itself contains dots (``"dataset.num_classes"`` in a flat metrics file) is matched
    before it is split."""
    if dotted == "":
        return values
    if isinstance(values, Mapping):
        if dotted in values:
            return values[dotted]
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):  # longest key prefix first
            head = ".".join(parts[:cut])
            if head in values:
                found = lookup(values[head], ".".join(parts[cut:]))
                if found is not MISSING:
                    return found
        return MISSING
    if isinstance(values, Sequence) and not isinstance(values, str):
        head, _, rest = dotted.partition(".")
        try:
            item = values[int(head)]
        except (ValueError, IndexError):
            return MISSING
        return lookup(item, rest)
    return MISSING


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "configured now: `caa.training.iterations`" / "as run" / "`caa_curve.json`" / ""


def _read_json(path: Path, cache: dict[Path, Any]) -> Any:
    if path not in cache:
        try:
            cache[path] = json.loads(path.read_text())
        except (OSError, ValueError):
            cache[path] = MISSING
    return cache[path]


def resolve_reference(
    reference: Any,
    params: Mapping[str, Any],
    project_dir: Path,
    cache: dict[Path, Any],
    record: Mapping[str, Any] | None = None,
) -> Resolved | None:
    """The value of one reference (see module docstring), or None when it does not resolve; ``record``
    is the run record of the section's pipeline (``run:`` references, and ``params:`` as run)."""
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        return Resolved(reference, "")
    if not isinstance(reference, str) or ":" not in reference:
        raise ReportConfigError(
            f"bad reference {reference!r}: expected 'params:<key>', 'run:<key>', 'json:<file>:<key>', "
            "'thesis:<key>' or 'text:<value>'"
        )
    kind, _, rest = reference.partition(":")
    if kind == "text":
        return Resolved(rest, "")
    if kind == "thesis":
        value = lookup(thesis_tables.references(), rest)
        if value is MISSING or isinstance(value, (Mapping, list, tuple)):
            raise ReportConfigError(
                f"bad reference {reference!r}: no such thesis number (seg_pipelines.thesis_tables.references)"
            )
        return Resolved(value, "")
    if kind == "run":
        value = MISSING if record is None else lookup(record, rest)
        return None if value is MISSING or value is None else Resolved(value, "as run")
    if kind == "params":
        recorded = MISSING if record is None else lookup(record.get("parameters") or {}, rest)
        if recorded is not MISSING and recorded is not None:
            return Resolved(recorded, "as run")
        value = lookup(params, rest)
        return None if value is MISSING or value is None else Resolved(value, f"configured now: `{rest}`")
    if kind == "json":
        file, _, key = rest.partition(":")
        data = _read_json(project_dir / file, cache)
        value = MISSING if data is MISSING else lookup(data, key)
        return None if value is MISSING or value is None else Resolved(value, f"`{Path(file).name}`")
    raise ReportConfigError(f"bad reference {reference!r}: unknown kind {kind!r}")


def resolve_first(
    references: Any,
    params: Mapping[str, Any],
    project_dir: Path,
    cache: dict[Path, Any],
    record: Mapping[str, Any] | None = None,
) -> Resolved | None:
    refs = references if isinstance(references, list) else [references]
    for reference in refs:
        found = resolve_reference(reference, params, project_dir, cache, record)
        if found is not None:
            return found
    return None


def paired_verdict(spec: Mapping[str, Any], thesis_sign: float, project_dir: Path, rule: str) -> str | None:
    """The verdict of ``rows[0]`` against ``rows[1]`` on ``metric`` from an ablation's per-run CSV (``table,
    row, seed, metric, value, status``), paired by seed; ``None`` while the file or a row is missing."""
    path = project_dir / spec["runs"]
    if not path.is_file():
        return None
    candidate, baseline = spec["rows"]
    values: dict[str, dict[int, float]] = {candidate: {}, baseline: {}}
    with path.open(newline="") as handle:
        for line in csv.DictReader(handle):
            if line["row"] in values and line["metric"] == spec["metric"] and line.get("status", "ok") == "ok":
                values[line["row"]][int(line["seed"])] = float(line["value"])
    seeds = sorted(set(values[candidate]) & set(values[baseline]))
    if not seeds:
        return None
    comparison = paired_comparison([values[candidate][s] for s in seeds], [values[baseline][s] for s in seeds], rule)
    verdict = finding_verdict(comparison, "higher" if thesis_sign > 0 else "lower")
    return f"{verdict}: {comparison.describe(2)}"


def resolve_number(spec: Any, params: Mapping[str, Any], project_dir: Path, cache: dict[Path, Any]) -> float | None:
    """A number from a reference, or ``{minus: [a, b], scale: s}`` = (a − b)·s, ``{ratio: [a, b], scale: s}``
    = (a / b)·s, or ``{ref, scale}``."""
    if isinstance(spec, Mapping):
        scale = float(spec.get("scale", 1.0))
        if "minus" in spec:
            a, b = (resolve_number(r, params, project_dir, cache) for r in spec["minus"])
            return None if a is None or b is None else (a - b) * scale
        if "ratio" in spec:
            a, b = (resolve_number(r, params, project_dir, cache) for r in spec["ratio"])
            return None if a is None or not b else a / b * scale
        value = resolve_number(spec.get("ref"), params, project_dir, cache)
        return None if value is None else value * scale
    found = resolve_first(spec, params, project_dir, cache)
    if found is None:
        return None
    try:
        value = float(found.value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# --- hardware ------------------------------------------------------------------------------------


def hardware_summary() -> dict[str, str]:
    """CPU / GPU / threads of the machine building the report (torch's view)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    else:
        gpu = "none (CPU only)"
    return {
        "cpu": f"{cpu} ({os.cpu_count()} logical cores)",
        "gpu": gpu,
        "torch_threads": str(torch.get_num_threads()),
        "software": f"torch {torch.__version__}, Python {platform.python_version()}, {platform.system()}",
    }


# --- rendering helpers ---------------------------------------------------------------------------


def markdown_table(columns: Sequence[Any], rows: Sequence[Sequence[Any]], decimals: int | None = None) -> str:
    """A GFM table (:func:`seg_pipelines.engine.tables.markdown_table`); floats with ``decimals``
    places (None: 4 significant digits), missing values as ``–``."""
    if not columns:
        raise ReportConfigError("a table needs at least one column")
    return tables.markdown_table(rows, columns, decimals=decimals)


def demote_headings(text: str, level: int = 5) -> str:
    """Headings of an included markdown file moved to ``level`` (and below) so they nest under
    the report's section headings; fenced code is left alone."""
    out, fenced, shift = [], False, None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#{1,6})\s+(.*)$", line)
        if match:
            depth = len(match.group(1))
            shift = level - depth if shift is None else shift
            line = "#" * min(6, max(level, depth + shift)) + " " + match.group(2)
        out.append(line)
    return "\n".join(out).strip()


def csv_markdown(path: Path, max_rows: int = 60) -> str:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return "_(empty CSV)_"
    table = markdown_table(rows[0], rows[1 : max_rows + 1])
    if len(rows) - 1 > max_rows:
        table += f"\n\n_… {len(rows) - 1 - max_rows} more rows in `{path.name}`_"
    return table


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(values, Mapping):
        for key, value in values.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    else:
        flat[prefix] = values
    return flat


def json_markdown(path: Path, keys: Sequence[str] | None = None, max_rows: int = 40) -> str:
    """A two-column table of the scalar values of a JSON file (``keys``: glob patterns over the
    flattened keys); lists are summarised by their length."""
    data = json.loads(path.read_text())
    if isinstance(data, list):
        return f"_{len(data)} records; last: {json.dumps(data[-1]) if data else '–'}_"
    flat = _flatten(data)
    rows = []
    for key, value in flat.items():
        if keys and not any(fnmatch.fnmatchcase(key, pattern) for pattern in keys):
            continue
        if isinstance(value, list):
            value = (
                f"list of {len(value)}"
                if len(value) > 8 or any(isinstance(v, (list, dict)) for v in value)
                else ", ".join(map(str, value))
            )
        rows.append((key, value))
    if not rows:
        return "_(no matching values)_"
    table = markdown_table(["key", "value"], rows[:max_rows])
    if len(rows) > max_rows:
        table += f"\n\n_… {len(rows) - max_rows} more values in `{path.name}`_"
    return table


def _mtime(path: Path) -> str:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- the report ----------------------------------------------------------------------------------


@dataclass
class ItemStatus:
    section: str
    title: str
    path: str
    produced: bool


def _context_parts(spec: Any) -> list[Mapping[str, Any]]:
    """A context entry as parts ``{ref, label}``: a reference or a list of references is one part
    (first that resolves); a list holding mappings is one part per element."""
    if isinstance(spec, Mapping):
        return [spec]
    if isinstance(spec, list) and any(isinstance(e, Mapping) for e in spec):
        return [e if isinstance(e, Mapping) else {"ref": e} for e in spec]
    return [{"ref": spec}]


def section_items(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A section's items with each ``{tables: <pipeline>}`` expanded into one markdown item per thesis
    table of the pipeline, titled ``Table <id>: <title>``."""
    expanded: list[Mapping[str, Any]] = []
    for item in items:
        if "tables" not in item:
            expanded.append(item)
            continue
        try:
            found = thesis_tables.tables_of(item["tables"])
        except KeyError as error:
            raise ReportConfigError(f"bad item {item!r}: {error.args[0]}") from None
        expanded += [{"path": f"**/*{t.key}[._]*md", "title": f"Table {t.id}: {t.title}"} for t in found]
    return expanded


CONTEXT_LABELS = {"model": "Model", "dataset": "Dataset", "budget": "Budget", "seeds": "Seeds", "hardware": "Hardware"}


class ReportBuilder:
    def __init__(
        self, config: Mapping[str, Any], params: Mapping[str, Any], project_dir: Path, hardware: Mapping[str, str]
    ):
        if "chapters" not in config:
            raise ReportConfigError("report parameters need a `chapters` list")
        self.config = config
        self.params = params
        self.project_dir = Path(project_dir)
        self.reporting_dir = self.project_dir / config.get("reporting_dir", "data/08_reporting")
        self.hardware = hardware
        self.cache: dict[Path, Any] = {}
        self.claimed: set[Path] = set()
        self.status: list[ItemStatus] = []

    # files ----------------------------------------------------------------------------------

    def _matches(self, pattern: str) -> list[Path]:
        if any(ch in pattern for ch in "*?["):
            found = sorted(  # a file an earlier item already shows is not repeated
                p
                for p in self.reporting_dir.glob(pattern)
                if p.is_file() and p.name not in REPORT_FILES and p not in self.claimed
            )
        else:
            path = self.reporting_dir / pattern
            found = [path] if path.is_file() else []
        return found

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.reporting_dir).as_posix()

    def _render_file(self, path: Path, item: Mapping[str, Any]) -> str:
        suffix = path.suffix.lower()
        rel = self._rel(path)
        stamp = f"_`{rel}`, written {_mtime(path)}_"
        if not item.get("inline", True):  # e.g. a file that repeats tables shown elsewhere
            return f"[`{rel}`]({rel}) — {stamp}"
        if suffix in FIGURE_SUFFIXES:
            return f"![{item.get('title', rel)}]({rel})\n\n{stamp}"
        if suffix == ".md":
            return demote_headings(path.read_text()) + f"\n\n{stamp}"
        if suffix == ".csv":
            return csv_markdown(path, item.get("max_rows", 60)) + f"\n\n{stamp}"
        if suffix == ".json":
            return json_markdown(path, item.get("keys"), item.get("max_rows", 40)) + f"\n\n{stamp}"
        return f"[{rel}]({rel})\n\n{stamp}"

    # blocks ----------------------------------------------------------------------------------

    def _made_with(self, pipeline: str, record: Mapping[str, Any] | None) -> list[str]:
        """The section's provenance lines: the env, data root and time of the run that made its
        outputs, and a warning when the prepared data has changed since."""
        if record is None:
            return []
        lines = [
            f"- **Made with:** `kedro run --pipelines={pipeline} --env {record.get('env', '?')}` "
            f"(data root `{record.get('data_root', '?')}`), finished {record.get('finished', '?')}; "
            f'values marked "as run" are from its record '
            f"`{provenance.record_path(Path(), pipeline).as_posix()}`"
        ]
        current = provenance.dataset_summary(_read_json(self.reporting_dir / "preparation_report.json", self.cache))
        changes = provenance.dataset_changes(record.get("dataset"), current)
        if changes:
            lines.append(
                f"- **The prepared data has changed since this run** ({'; '.join(changes)}): the tables below "
                f"describe the data as run; rerun `kedro run --pipelines={pipeline}` for the current data."
            )
        return lines

    def _context(self, section: Mapping[str, Any]) -> str:
        pipeline = section.get("pipeline")
        record = provenance.read_run_record(self.reporting_dir, pipeline) if pipeline else None
        lines = self._made_with(pipeline, record) if pipeline else []
        context = dict(section.get("context") or {})
        for key, label in CONTEXT_LABELS.items():
            if key == "hardware" and key not in context:
                lines.append(
                    f"- **{label}:** not recorded with the results; this report was built on {self.hardware['cpu']}, "
                    f"GPU: {self.hardware['gpu']}, torch threads {self.hardware['torch_threads']}"
                )
                continue
            spec = context.get(key)
            if spec is None:
                continue
            parts = []
            for entry in _context_parts(spec):
                found = resolve_first(entry["ref"], self.params, self.project_dir, self.cache, record)
                if found is None:
                    continue
                text = entry.get("label", "{}").format(_format_value(found.value))
                parts.append(f"{text} ({found.source})" if found.source else text)
            lines.append(
                f"- **{label}:** " + ("; ".join(parts) if parts else "unknown (nothing on disk or in the parameters)")
            )
        for note in section.get("notes") or []:
            lines.append(f"- {note}")
        return "\n".join(lines)

    def _thesis(self, section: Mapping[str, Any]) -> str:
        thesis = section.get("thesis")
        if not thesis:
            return ""
        comparable = thesis.get("comparable", False)
        verdict = {True: "comparable", False: "not comparable", "partly": "partly comparable"}.get(
            comparable, str(comparable)
        )
        out = [f"**Thesis vs ours — {verdict}.** {thesis.get('note', '')}".rstrip()]
        tables_shown = thesis.get("table") or []
        for table in tables_shown if isinstance(tables_shown, list) else [tables_shown]:
            if isinstance(table, str):  # a table of the thesis's numbers, by name
                if table not in thesis_tables.REPORT_TABLES:
                    raise ReportConfigError(
                        f"unknown thesis table {table!r}; known: {sorted(thesis_tables.REPORT_TABLES)}"
                    )
                table = thesis_tables.REPORT_TABLES[table]
            out.append(
                f"_{table.get('title', 'Thesis numbers')}_\n\n"
                + markdown_table(table["columns"], table["rows"], table.get("decimals", 2))
            )
        directions = thesis.get("directions") or []
        paired = any("paired" in direction for direction in directions)
        rule = str(self.config.get("verdict_rule", "t95"))
        if directions:
            rows = []
            for direction in directions:
                # a number (a literal or a "thesis:" reference / {minus: …} of them), or a qualitative
                # finding ("more compact (+)") with its `sign`
                spec = direction["thesis"]
                if isinstance(spec, Mapping) or (isinstance(spec, str) and spec.startswith("thesis:")):
                    value = resolve_number(spec, self.params, self.project_dir, self.cache)
                    if value is None:
                        raise ReportConfigError(
                            f"thesis number of direction {direction['label']!r} does not resolve: {spec!r}"
                        )
                    spec = value
                if isinstance(spec, (int, float)):
                    theirs, shown = float(spec), f"{float(spec):+.2f}"
                else:
                    theirs, shown = float(direction.get("sign", 1)), str(direction["thesis"])
                ours = resolve_number(direction.get("ours"), self.params, self.project_dir, self.cache)
                over_seeds = (
                    (paired_verdict(direction["paired"], theirs, self.project_dir, rule) or "not produced yet",)
                    if "paired" in direction
                    else ("–",) * paired
                )
                if ours is None:
                    rows.append((direction["label"], shown, "not produced yet", "–", *over_seeds))
                    continue
                tolerance = float(direction.get("tolerance", self.config.get("direction_tolerance", 0.0)))
                if abs(ours) <= tolerance:
                    verdict = f"no effect (|ours| ≤ {tolerance:g})"
                else:
                    verdict = "yes" if (ours > 0) == (theirs > 0) else "**no**"
                rows.append((direction["label"], shown, f"{ours:+.2f}", verdict, *over_seeds))
            header = ["Finding (ours − baseline)", "thesis", "ours", "same sign of means"]
            header += [f"verdict over seeds (paired, {rule})"] * paired
            out.append(markdown_table(header, rows))
        return "\n\n".join(out)

    def _section(self, chapter: Mapping[str, Any], section: Mapping[str, Any]) -> str:
        for key in ("title", "items"):
            if key not in section:
                raise ReportConfigError(
                    f"section {section.get('title', section)!r} of {chapter.get('title')!r} has no `{key}`"
                )
        pipeline = section.get("pipeline")
        out = [f"### {section['title']}"]
        if section.get("description"):
            out.append(section["description"])
        context = self._context(section)
        if context:
            out.append(context)
        thesis = self._thesis(section)
        missing = []
        for item in section_items(section["items"]):
            if "path" not in item:
                raise ReportConfigError(f"an item of section {section['title']!r} has no `path`: {item!r}")
            paths = self._matches(item["path"])
            title = item.get("title", item["path"])
            item_pipeline = item.get("pipeline", pipeline)
            self.status.append(ItemStatus(section["title"], title, item["path"], bool(paths)))
            if not paths:
                missing.append((title, item["path"], item_pipeline))
                continue
            for path in paths:
                self.claimed.add(path)
                heading = title if len(paths) == 1 else f"{title}: `{self._rel(path)}`"
                out.append(f"#### {heading}\n\n" + self._render_file(path, item))
        if thesis:
            out.append(thesis)
        if missing:
            lines = ["**Not produced yet:**"]
            for title, path, item_pipeline in missing:
                command = f" — run `kedro run --pipelines={item_pipeline}`" if item_pipeline else ""
                lines.append(f"- {title} (`{path}`){command}")
            out.append("\n".join(lines))
        return "\n\n".join(out)

    def _unclaimed(self) -> str:
        """Figures / markdown tables no section lists (shown in full), then every CSV (linked: each is
        a markdown table's twin or a long per-seed table)."""
        if not self.reporting_dir.is_dir():
            return ""
        files = sorted(p for p in self.reporting_dir.rglob("*") if p.is_file() and p.name not in REPORT_FILES)
        shown = [p for p in files if p.suffix.lower() in (".md", *FIGURE_SUFFIXES) and p not in self.claimed]
        csvs = [p for p in files if p.suffix.lower() == ".csv"]
        out = []
        if shown:
            out += [
                "## Other outputs",
                "Tables and figures found in the reporting folder that no section lists "
                "(add them to `parameters_report.yml`).",
            ]
            out += [f"#### `{self._rel(p)}`\n\n" + self._render_file(p, {"title": p.stem}) for p in shown]
        if csvs:
            links = [
                f"- [`{self._rel(p)}`]({self._rel(p)})"
                + (" (the table above as CSV)" if p.with_suffix(".md").exists() else "")
                for p in csvs
            ]
            out += ["## CSV files", "\n".join(links)]
        return "\n\n".join(out)

    def _produced_summary(self) -> str:
        """The report's opening: what is on disk, section by section, and what to run for the rest."""
        sections: dict[str, list[str]] = {}
        for status in self.status:
            sections.setdefault(status.section, [])
            if status.produced:
                sections[status.section].append(status.title)
        produced = [f"- **{name}:** " + "; ".join(titles) for name, titles in sections.items() if titles]
        if not produced:
            return (
                "**Nothing produced yet.** `kedro run` runs the main job (attribute selection, chapter 5) on the "
                "embedded default; each pipeline below produces its own tables."
            )
        return "**Produced so far:**\n\n" + "\n".join(produced)

    def _not_produced(self, chapters: Sequence[Mapping[str, Any]]) -> str:
        """Chapters with no output at all, one line per section with the command that fills it."""
        lines = []
        for chapter in chapters:
            entries = []
            for section in chapter["sections"]:
                command = f" — `kedro run --pipelines={section['pipeline']}`" if section.get("pipeline") else ""
                entries.append(f"  - {section['title']}{command}")
            lines.append(f"- **{chapter['title']}**\n" + "\n".join(entries))
        return "## Not produced yet\n\n" + "\n".join(lines) if lines else ""

    def build(self) -> str:
        body, empty_chapters = [], []  # a missing reporting folder only means nothing was produced yet
        for chapter in self.config["chapters"]:
            if "title" not in chapter or "sections" not in chapter:
                raise ReportConfigError(f"chapter {chapter!r} needs `title` and `sections`")
            before = len(self.status)
            part = [f"## {chapter['title']}"]
            if chapter.get("description"):
                part.append(chapter["description"])
            part += [self._section(chapter, section) for section in chapter["sections"]]
            if any(s.produced for s in self.status[before:]):
                body.append("\n\n".join(part))
            else:  # a chapter that is all "not produced yet" goes to the end, one line per section
                empty_chapters.append(chapter)
        other = self._unclaimed()
        produced = sum(s.produced for s in self.status)
        head = [
            f"# {self.config.get('title', 'Report')}",
            f"Built {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from the files in "
            f"`{self.config.get('reporting_dir', 'data/08_reporting')}`: "
            f"{produced} of {len(self.status)} listed outputs "
            "produced so far. Rebuild with `kedro run --pipelines=report`.",
            self._produced_summary(),
        ]
        if self.config.get("preamble"):
            head.append(self.config["preamble"].strip())
        head.append(
            "**Hardware of this machine** (the one that built the report; each table states where it was measured "
            "when that matters):\n\n"
            + markdown_table(
                ["", ""],
                [
                    ("CPU", self.hardware["cpu"]),
                    ("GPU", self.hardware["gpu"]),
                    ("torch threads", self.hardware["torch_threads"]),
                    ("software", self.hardware["software"]),
                ],
            )
        )
        contents = []
        for chapter in self.config["chapters"]:
            sections = {section["title"] for section in chapter["sections"]}
            listed = [s for s in self.status if s.section in sections]
            contents.append(f"{chapter['title']} ({sum(s.produced for s in listed)}/{len(listed)})")
        head.append("**Contents:** " + " · ".join(contents))
        tail = [text for text in (self._not_produced(empty_chapters), other) if text]
        return "\n\n".join(head + body + tail) + "\n"


def build_report(
    config: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    project_dir: str | Path = ".",
    hardware: Mapping[str, str] | None = None,
) -> tuple[str, list[ItemStatus]]:
    """The report markdown and the status of every listed item (produced or not)."""
    builder = ReportBuilder(config, params or {}, Path(project_dir), hardware or hardware_summary())
    return builder.build(), builder.status


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; display: block; overflow-x: auto; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f2f2f2; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
code {{ background: #f5f5f5; padding: 0 3px; }}
h2 {{ border-bottom: 2px solid #444; margin-top: 2em; }}
h3 {{ border-bottom: 1px solid #bbb; margin-top: 1.6em; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def render_html(markdown: str, title: str = "Report") -> str:
    """The report as a standalone HTML page (CommonMark + GFM tables, via markdown-it-py); figures
    stay relative ``<img>`` links to the PNG files next to it."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": True}).enable("table")
    return HTML_TEMPLATE.format(title=html.escape(title), body=renderer.render(markdown))
