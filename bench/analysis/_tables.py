"""Tables as users paste them: LaTeX (booktabs, siunitx), Markdown and CSV, each with its provenance.

A :class:`Table` holds the numbers (written to CSV at full precision) and a list of displayed
:class:`Column` s; the displayed cells are rounded, spreads are shown as ``mean ± std``, intervals as
``value [low, high]``. Bold marks a best cell in one of two ways: where a column names a boolean column
of the data (``emphasis``, e.g. set where a test separates the best method from the rest), exactly those
cells; else, where a column says which way is better (``best``), the best cell of each group of rows
(every cell that ties with it after rounding), but nothing where every cell of the group ties.

The LaTeX is made by pandas' ``Styler.to_latex`` with booktabs rules. Numbers are wrapped in siunitx's
``\\num`` so the document's siunitx settings format them; bold cells go through a ``\\benchbest`` macro
that the file defines with ``\\providecommand`` (so a document can redefine it) and that carries the
weight into siunitx's math typesetting. A table wider than the text is shrunk to
its width (``\\benchfit``, also redefinable). A document that inputs the table needs
``\\usepackage{booktabs,siunitx,graphicx}`` (siunitx version 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import write_text
from ._provenance import Provenance

FORMATS = ("latex", "md", "csv")
SUFFIXES = {"latex": ".tex", "md": ".md", "csv": ".csv"}
KINDS = ("text", "number", "int", "pvalue")
BEST_MACRO = r"\providecommand{\benchbest}[1]{{\bfseries\sisetup{reset-text-series=false,text-series-to-math=true}#1}}"
# Shrinks a tabular wider than the text to the text's width (graphicx's \resizebox); leaves others alone.
FIT_MACRO = (
    r"\providecommand{\benchfit}[1]{\sbox0{#1}\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}"
    r"\else\usebox0\fi}"
)
# Local to the table float: show spreads as "a ± b" rather than siunitx's default "a(b)", and a smaller font
# for the wide tables of many metrics.
TABLE_SETUP = r"\sisetup{separate-uncertainty=true}"
MISSING = "--"
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"\ensuremath{\pm}",
    "ρ": r"\ensuremath{\rho}",
    "τ": r"\ensuremath{\tau}",
    "Δ": r"\ensuremath{\Delta}",
}


def escape_latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def check_formats(formats: Sequence[str]) -> list[str]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown table format {unknown[0]!r}. Valid choices: {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


@dataclass(frozen=True)
class Column:
    """One displayed column: where its value (and spread or interval) is, how to show it, which way is better."""

    key: str
    header: str
    latex: str | None = None
    kind: str = "number"
    digits: int = 3
    spread: str | None = None
    interval: tuple[str, str] | None = None
    best: str | None = None
    #: A boolean column of the data: the cells to set in bold (instead of choosing them by ``best``).
    emphasis: str | None = None
    #: A header spanning this column and its neighbours of the same group (e.g. the ground truth above
    #: "Kendall tau" and "Spearman rho"): a two-row header in LaTeX, a prefix in Markdown.
    group: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}. Valid choices: {', '.join(KINDS)}")
        if self.best not in (None, "max", "min"):
            raise ValueError(f"best must be 'max', 'min' or None, got {self.best!r}")

    @property
    def latex_header(self) -> str:
        return self.latex if self.latex is not None else escape_latex(self.header)

    @property
    def markdown_header(self) -> str:
        return f"{self.group}: {self.header}" if self.group else self.header


def _fixed(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    # "-0.000" reads as a sign that is not there.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _finite(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass
class Table:
    """Numbers, how to display them, a caption and label, and the provenance written into every file."""

    name: str
    frame: pd.DataFrame
    columns: list[Column]
    caption: str
    label: str
    provenance: Provenance
    #: Key columns whose repeated values are shown once, and within whose groups "best" is chosen.
    groups: list[str] = field(default_factory=list)
    #: The LaTeX font size of the table (e.g. ``scriptsize`` for one with intervals in every cell, set in ``tiny``).
    size: str = "small"

    def __post_init__(self) -> None:
        missing = [
            k
            for c in self.columns
            for k in (c.key, c.spread, c.emphasis, *(c.interval or ()))
            if k is not None and k not in self.frame.columns
        ]
        if missing:
            raise ValueError(f"table {self.name!r} displays column(s) {', '.join(missing)} its data lacks")
        for headers in (
            [c.markdown_header for c in self.columns],
            [(c.group, c.latex_header) for c in self.columns],
        ):
            if len(set(headers)) != len(headers):
                raise ValueError(f"table {self.name!r} has two columns headed alike: {headers}")
        # A key with one value for every row is said once in the caption rather than repeated in a column.
        constant = [
            c for c in self.columns if c.key in self.groups and len(self.frame) and self.frame[c.key].nunique() == 1
        ]
        self.shown = [c for c in self.columns if c not in constant]
        said = "; ".join(f"{c.header}: {self.frame[c.key].iloc[0]}" for c in constant)
        self.full_caption = f"{said[0].upper()}{said[1:]}. {self.caption}" if said else self.caption

    # --- cells ----------------------------------------------------------------------------------

    def _best_mask(self, column: Column) -> np.ndarray:
        mask = np.zeros(len(self.frame), dtype=bool)
        if column.emphasis is not None:
            return self.frame[column.emphasis].fillna(False).to_numpy(bool)
        if column.best is None:
            return mask
        rounded = self.frame[column.key].astype(float).round(column.digits)
        groups = [np.arange(len(self.frame))]
        if self.groups:
            grouped = self.frame.reset_index(drop=True).groupby(self.groups, sort=False)
            groups = [np.asarray(ix) for ix in grouped.indices.values()]
        for rows in groups:
            values = rounded.iloc[rows]
            if values.notna().sum() < 2 or values.nunique() == 1:
                continue  # nothing to be best against, or every cell ties
            target = values.max() if column.best == "max" else values.min()
            mask[rows[(values == target).to_numpy()]] = True
        return mask

    def _cell(self, row: pd.Series, column: Column, flavour: str) -> str:
        value = row[column.key]
        if column.kind == "text":
            text = "" if not _finite(value) else str(value)
            return escape_latex(text) if flavour == "latex" else text.replace("|", r"\|")
        if not _finite(value):
            return MISSING
        if column.kind == "int":
            number = str(int(value))
            return rf"\num{{{number}}}" if flavour == "latex" else number
        if column.kind == "pvalue":
            floor = 10.0**-column.digits
            text = f"< {_fixed(floor, column.digits)}" if value < floor else _fixed(value, column.digits)
            return rf"\num{{{text}}}" if flavour == "latex" else text
        main = _fixed(float(value), column.digits)
        if column.spread and _finite(row[column.spread]):
            spread = _fixed(float(row[column.spread]), column.digits)
            return rf"\num{{{main} \pm {spread}}}" if flavour == "latex" else f"{main} ± {spread}"
        if column.interval and _finite(row[column.interval[0]]) and _finite(row[column.interval[1]]):
            low, high = (_fixed(float(row[k]), column.digits) for k in column.interval)
            if flavour == "latex":
                smaller = "tiny" if self.size in ("scriptsize", "tiny") else "scriptsize"  # below its value's size
                return rf"\num{{{main}}} {{\{smaller}[\num{{{low}}}, \num{{{high}}}]}}"
            return f"{main} [{low}, {high}]"
        return rf"\num{{{main}}}" if flavour == "latex" else main

    @staticmethod
    def _name(column: Column, flavour: str) -> str:
        return column.latex_header if flavour == "latex" else column.markdown_header

    def best_cells(self) -> np.ndarray:
        """A boolean (rows, displayed columns) array: the cells to set in bold."""
        return np.column_stack([self._best_mask(c) for c in self.shown])

    def cells(self, flavour: str, *, bold: bool = True) -> pd.DataFrame:
        """The displayed strings, one column per :class:`Column`, with grouped keys blanked.

        With ``bold``, Markdown cells of :meth:`best_cells` are wrapped in ``**``; LaTeX marks them through
        the Styler in :meth:`to_latex` instead.
        """
        frame = self.frame.reset_index(drop=True)
        best = self.best_cells()
        out = {}
        for j, column in enumerate(self.shown):
            texts = [self._cell(row, column, flavour) for _, row in frame.iterrows()]
            if bold and flavour == "md":
                texts = [f"**{t}**" if best[i, j] else t for i, t in enumerate(texts)]
            out[j] = texts
        cells = pd.DataFrame(out, index=frame.index)
        # LaTeX headers may repeat under different groups ("Kendall tau" under each ground truth).
        cells.columns = [self._name(c, flavour) for c in self.shown]
        # A group's key is shown on its first row only, as tables in papers do.
        shown = [c for c in self.shown if c.key in self.groups]
        for column in shown:
            name = self._name(column, flavour)
            keys = frame[self.groups[: self.groups.index(column.key) + 1]].astype(str).agg("\x00".join, axis=1)
            cells.loc[keys.duplicated().to_numpy(), name] = ""
        return cells

    # --- formats --------------------------------------------------------------------------------

    def to_latex(self) -> str:
        cells = self.cells("latex")
        grouped = any(c.group for c in self.shown)
        if grouped:  # a spanning header above each group of columns
            headers = [(escape_latex(c.group or ""), self._name(c, "latex")) for c in self.shown]
            cells.columns = pd.MultiIndex.from_tuples(headers)
        props = np.where(self.best_cells(), "benchbest:--rwrap;", "")
        styler = cells.style.hide(axis="index").apply(lambda _: props, axis=None)
        align = "".join("l" if c.kind == "text" else "r" for c in self.shown)
        body = styler.to_latex(
            multicol_align="c",
            hrules=True,
            caption=escape_latex(self.full_caption),
            label=self.label,
            position="htbp",
            position_float="centering",
            column_format=align,
        )
        lines = body.splitlines()
        lines.insert(1, f"\\{self.size}{TABLE_SETUP}")  # right after \begin{table}
        start = next(i for i, line in enumerate(lines) if line.startswith(r"\begin{tabular}"))
        end = next(i for i, line in enumerate(lines) if line.startswith(r"\end{tabular}"))
        lines[start] = r"\benchfit{%" + "\n" + lines[start]
        lines[end] = lines[end] + "}"
        header = [f"% {line}" for line in self.provenance.lines()]
        header.append(
            "% needs \\usepackage{booktabs,siunitx,graphicx} (siunitx v3); \\benchbest marks the best cells, "
            "\\benchfit shrinks a table wider than the text"
        )
        return "\n".join([*header, BEST_MACRO, FIT_MACRO, *lines]) + "\n"

    def to_markdown(self) -> str:
        cells = self.cells("md")
        align = ["left" if c.kind == "text" else "right" for c in self.shown]
        table = cells.to_markdown(index=False, colalign=align, disable_numparse=True)
        header = "\n".join(["<!--", *self.provenance.lines(), "-->"])
        return f"{header}\n\n{self.full_caption}\n\n{table}\n"

    def to_csv(self) -> str:
        header = "".join(f"# {line}\n" for line in self.provenance.lines())
        return header + self.frame.to_csv(index=False, lineterminator="\n")

    def render(self, fmt: str) -> str:
        return {"latex": self.to_latex, "md": self.to_markdown, "csv": self.to_csv}[check_formats([fmt])[0]]()

    def write(self, folder: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
        """Write ``<folder>/<name>.{tex,md,csv}``; returns the paths written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in check_formats(formats):
            path = folder / f"{self.name}{SUFFIXES[fmt]}"
            write_text(path, self.render(fmt))
            paths.append(path)
        return paths
