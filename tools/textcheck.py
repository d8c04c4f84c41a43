"""Checks that a chapter's text is as trustworthy as its code (issue 21).

Usage::

    python -m tools.textcheck numbers notebooks/05_wav2vec2.ipynb ...   # decimals/percentages with no source
    python -m tools.textcheck vocabulary notebooks/05_wav2vec2.ipynb ...  # the build's words in the story
    python -m tools.textcheck machinery notebooks/05_wav2vec2.ipynb ...  # tolerances, markers, machine lines shown
    python -m tools.textcheck html _build/html                            # the built site as a reader sees it
    python -m tools.textcheck audit > results/text_audit.md               # per-chapter counts, first violations

Each subcommand prints one line per violation and exits 1 if there is any (0 otherwise). With no notebook
arguments, ``numbers`` and ``vocabulary`` check every chapter.

**numbers.** In markdown cells, every *decimal* (``0.365``, ``3.04``), every number in *scientific notation*
(``1e-4``, ``3.2e-05``) and every *percentage* (``95%``, ``36.5 %``) must have a source. Integers that are not
percentages are out of scope (too many legitimate ones: years, sizes, step counts). Out of scope as well: math
(``$...$``, ``$$...$$``), code (inline backticks and fenced blocks), URLs (link targets and bare ``http(s)://``
addresses), dotted version numbers with two dots or more (``2.13.0``) and arXiv identifiers. A number has a source if

(a) *printed*: a number printed by the same notebook (stream output or the ``text/plain`` of a result or a display)
    rounds to it at the prose's precision. The prose number's count of decimals d decides: the printed number,
    rounded to d decimals (half up or half to even: the printed text is itself rounded, so either is honest),
    must equal it. ``0.37`` (and ``0.36``) is backed by a printed ``0.365``, ``0.37`` by ``0.3701``, ``0.40`` by
    ``0.4``; ``0.37`` is not backed by ``0.36``, nor ``0.3651`` by ``0.365`` (more digits than anything printed).
    A prose percentage ``p%`` is also backed by a printed fraction ``f`` with 100 f rounding to p (``36.5%`` by
    ``0.365``). Scientific notation is compared by value, rounded at the prose's decimals (``1e-4``: 4). Known
    weakness: any number the notebook printed counts, not only the one the sentence means, so a coincidence passes;
    the rule catches typed numbers that nothing printed, not misattributed ones;
(b) *a setting*: a number with exactly the same value appears as a numeric literal (a Python NUMBER token, so not
    in a comment or a string) in a code cell of the notebook (``1e-4`` in prose and ``lr=1e-4`` or ``0.0001`` in
    code; for a percentage ``p%``, a literal p or p/100);
(c) *cited*: the same paragraph (markdown text between blank lines) carries a citation marker: an author-year
    citation (two authors or "et al." before a year: ``Baevski et al. 2020``, ``Ho et al. (2020)``, ``Rogge and
    Rasul, 2022``; one author with the year in parentheses or after a comma: ``Wang (2021)``, ``Wang, 2021``,
    ``(Wang 2021)``), a MyST citation role (``{cite}`key```, ``{cite:p}`...```), or a link to an http(s) address.
    A capitalised word before a bare year ("In 2020") is not a citation. An arXiv identifier (``arXiv:2006.11477``)
    is a marker too. The bare word "quoted" is not: it names no source, and in 04 it would have excused a paragraph
    whose other numbers (a parameter count of our own model) are computed, not quoted.

**vocabulary.** The story of a chapter must not speak the build's language: the words in ``STORY_VOCABULARY``
(case-insensitive, whole words) may appear only in the closing section ``## How this chapter is checked`` (from
that heading to the next level-2 heading) and in appendices (from any level-2 heading starting ``## Appendix`` to
the end of the notebook). Inline code counts: `nbval` in backticks is still the build talking.

**machinery.** What the tests need stays out of the reader's view: a ``±`` in a markdown paragraph or in any output
text must come with a spread label in the same text (``sd``, ``std``, ``standard deviation``, ``standard error``:
"0.066 ± 0.010, sd over 3 seeds"), since a tolerance is recorded in the cell's metadata instead; no code cell carries
an nbval marker comment (tags instead); and no output of the story (outside the closing checked section and the
appendices) prints the machine: a line holding one of ``MACHINE_LINES`` (platform strings, GPU names, load, local
paths, environment warnings).

**width.** A text output the website shows as preformatted text (a stream, or a result with no Markdown, HTML or
image form) keeps its columns only while its lines fit the page: no such line may be wider than ``MAX_COLUMNS``
(100) characters. Cells whose output the website hides (tags ``remove-output``, ``remove-cell``) are exempt. A table
of results belongs in ``annotated.utils.results_table``, which the website renders as a table.

**html.** On every built chapter page (``notebooks/*.html``): no ipywidgets placeholder text (``interactive(
children=``), no ``#| default_exp`` line, and the wrapping stylesheet ``_static/custom.css`` linked, so no code
is cut off at the right edge; and on the pages of ``WIDTH_CLEAN_CHAPTERS`` (chapters join it as they pass
``width``), no line of an output's preformatted text wider than ``MAX_COLUMNS``.
"""

from __future__ import annotations

import argparse
import html as html_lib
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path

from tools.nbexport import REPO_ROOT, cell_source, chapter_notebooks


# --- shared -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One finding: where it is (notebook, cell index) and what is wrong."""

    where: str
    cell: int
    message: str

    def __str__(self) -> str:
        return f"{self.where} cell {self.cell}: {self.message}"


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (shorter lines, same on every checkout)."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def load_cells(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


# --- numbers ----------------------------------------------------------------------------------------------------

# A number token: optional decimals, optional exponent, optional percent sign. Digits glued to letters or to other
# digits by a dot (version numbers, section numbers 3.2.1) are handled in `prose_numbers`.
NUMBER = re.compile(r"(?<![\w.])(\d[\d_]*(?:,\d{3}(?!\d))*(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s?%)?")
FENCED_CODE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
BARE_URL = re.compile(r"https?://\S+")
VERSION = re.compile(r"\b\d+(?:\.\d+){2,}\b")
GENERATED_TABLE = re.compile(r"<!-- tolerance table: generated.*?<!-- end of tolerance table -->", re.S)
ARXIV_ID = re.compile(r"\barXiv:\s?\d{4}\.\d{4,5}(?:v\d+)?", re.I)
# Citation markers, see (c) in the module docstring.
AUTHOR = r"[A-Z][A-Za-z'\-]+"
YEAR = r"(?:19|20)\d\d[a-z]?"
AUTHOR_YEAR = re.compile(
    rf"\b{AUTHOR}(?: et al\.?| and {AUTHOR}| & {AUTHOR}),? \(?{YEAR}\b"  # Ho et al. 2020, Rogge and Rasul, 2022
    rf"|\b{AUTHOR},? \({YEAR}\)"  # Wang (2021)
    rf"|\b{AUTHOR}, {YEAR}\b"  # Wang, 2021
    rf"|\({AUTHOR},? {YEAR}\b"  # (Wang 2021)
)
CITE_ROLE = re.compile(r"\{cite(?::\w+)?\}`")
HTTP_LINK = re.compile(r"\]\(https?://|<https?://|(?<![(\w])https?://")


@dataclass(frozen=True)
class ProseNumber:
    """A decimal, scientific or percentage number as written in prose."""

    text: str
    value: Decimal
    percent: bool

    @property
    def decimals(self) -> int:
        """Decimal places written (for 1e-4: the exponent's, so that rounding compares at that precision)."""
        exponent = self.value.as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else 0


def to_decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace("_", "").replace(",", ""))
    except InvalidOperation:
        return None


def strip_out_of_scope(markdown: str) -> str:
    """Markdown without math, code, URLs, version numbers and the generated tolerance table (its numbers come from
    the stored outputs and a committed record, ``tools.nbtolerances``): numbers there are not prose claims."""
    for pattern in (GENERATED_TABLE, FENCED_CODE, DISPLAY_MATH, INLINE_MATH, INLINE_CODE, LINK_TARGET, BARE_URL, VERSION, ARXIV_ID):
        markdown = pattern.sub(" ", markdown)
    return markdown


def numbers_in(text: str) -> list[ProseNumber]:
    """Every number token in ``text`` (integers included; the caller decides what is in scope)."""
    found = []
    for match in NUMBER.finditer(text):
        value = to_decimal(match.group(1))
        if value is not None:
            found.append(ProseNumber(match.group(0).strip(), value, match.group(2) is not None))
    return found


def in_scope(number: ProseNumber) -> bool:
    """Decimals, scientific notation and percentages; plain integers are not checked."""
    body = number.text.rstrip("% ")
    return number.percent or "." in body or "e" in body.lower()


def prose_numbers(paragraph: str) -> list[ProseNumber]:
    return [n for n in numbers_in(strip_out_of_scope(paragraph)) if in_scope(n)]


def rounds_to(printed: Decimal, prose: ProseNumber, target: Decimal) -> bool:
    """Whether ``printed`` rounded to the prose's decimals equals ``target`` (half up or half even)."""
    quantum = Decimal(1).scaleb(-prose.decimals)
    try:
        return any(printed.quantize(quantum, rounding=mode) == target for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN))
    except InvalidOperation:  # a printed number too large for the quantum: it cannot round to the prose's value
        return False


def backed_by_output(number: ProseNumber, printed: list[Decimal]) -> bool:
    """Rule (a): some printed number rounds to the prose number (a percentage: also 100x a printed fraction)."""
    for value in printed:
        if rounds_to(value, number, number.value):
            return True
        if number.percent and rounds_to(value * 100, number, number.value):
            return True
    return False


def backed_by_code(number: ProseNumber, literals: set[Decimal]) -> bool:
    """Rule (b): the same value is a numeric literal in a code cell (a percentage p%: p or p/100)."""
    candidates = {number.value, number.value / 100} if number.percent else {number.value}
    return any(candidate in literals for candidate in candidates)  # Decimal equality ignores 0.50 vs 0.5


def cites_a_source(paragraph: str) -> bool:
    """Rule (c): the paragraph carries an author-year citation, a {cite} role, an arXiv id or an http(s) link."""
    markers = (AUTHOR_YEAR, CITE_ROLE, ARXIV_ID, HTTP_LINK)
    return any(marker.search(paragraph) for marker in markers)


def printed_text(cell: dict) -> str:
    """What a code cell printed: its stream outputs and the plain-text form of its results and displays."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append("".join(output.get("text", "")))
        text = output.get("data", {}).get("text/plain")
        if text is not None:
            parts.append("".join(text))
    return "\n".join(parts)


def numeric_literals(source: str) -> set[Decimal]:
    """The numeric literals of a code cell: Python's NUMBER tokens, so numbers in comments and strings do not count
    (a comment is no more a setting than the prose is). IPython magics and shell lines are skipped."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    literals = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(code + "\n").readline):
            if token.type == tokenize.NUMBER and (value := to_decimal(token.string)) is not None:
                literals.add(value)
    except (tokenize.TokenError, SyntaxError):
        pass  # a cell Python cannot tokenize has no settings we can read; its numbers then back nothing
    return literals


def notebook_sources(cells: list[dict]) -> tuple[list[Decimal], set[Decimal]]:
    """The numbers a notebook printed, and the numeric literals in its code cells."""
    printed: list[Decimal] = []
    literals: set[Decimal] = set()
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        printed.extend(n.value for n in numbers_in(printed_text(cell)))
        literals.update(numeric_literals(cell_source(cell)))
    return printed, literals


def paragraphs(markdown: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", markdown) if p.strip()]


def check_numbers(path: Path) -> list[Violation]:
    """Decimals and percentages in the markdown of ``path`` that no output, setting or citation backs."""
    cells = load_cells(path)
    printed, literals = notebook_sources(cells)
    violations = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        # Fenced code, display math and the generated table span blank lines: remove them before splitting.
        text = DISPLAY_MATH.sub(" ", FENCED_CODE.sub(" ", GENERATED_TABLE.sub(" ", cell_source(cell))))
        for paragraph in paragraphs(text):
            if cites_a_source(paragraph):
                continue
            for number in prose_numbers(paragraph):
                if not backed_by_output(number, printed) and not backed_by_code(number, literals):
                    violations.append(Violation(shown(path), index, f"number {number.text!r} is neither printed, "
                                                f"a setting in code, nor cited: {excerpt(paragraph, number.text)}"))
    return violations


def excerpt(paragraph: str, needle: str, width: int = 50) -> str:
    flat = " ".join(paragraph.split())
    at = max(flat.find(needle), 0)
    return "..." + flat[max(0, at - width): at + len(needle) + width] + "..."


# --- vocabulary -------------------------------------------------------------------------------------------------

# The build's vocabulary: how the chapter is checked, on what machine, under what limits. None of it belongs in the
# story of the model. Kept explicit; "run time" is not here because "at run time" is ordinary prose, and "ATen" is
# not because explaining PyTorch's kernels can be part of a story.
STORY_VOCABULARY: tuple[str, ...] = (
    "instruction set", "instruction sets", "ISA", "AVX", "AVX2", "AVX-512", "AVX512", "ATEN_CPU_CAPABILITY",
    "nbval", "nbspread", "nbexec", "CI",
    "tolerance", "tolerances",
    "this task", "the machine", "two-core", "2-core", "busy", "budget",
)
# Longest first, so that "AVX-512" is one hit, not "AVX"; `vocabulary_hits` lets "the machine learning" through.
VOCABULARY = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(w) for w in sorted(STORY_VOCABULARY, key=len, reverse=True)) + r")(?!\w)", re.I
)
CHECKED_HEADING = re.compile(r"^## How this chapter is checked\b", re.I)
APPENDIX_HEADING = re.compile(r"^## Appendix", re.I)
LEVEL2_HEADING = re.compile(r"^## ")


def story_lines(cells: list[dict]) -> list[tuple[int, str]]:
    """(cell index, line) for every markdown line outside the closing checked-section and the appendices."""
    lines, in_checked = [], False
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for line in cell_source(cell).splitlines():
            if APPENDIX_HEADING.match(line):
                return lines  # appendices run to the end of the chapter
            if LEVEL2_HEADING.match(line):
                in_checked = bool(CHECKED_HEADING.match(line))
            if not in_checked:
                lines.append((index, line))
    return lines


def vocabulary_hits(line: str) -> list[str]:
    hits = []
    for match in VOCABULARY.finditer(line):
        if match.group(0).lower() == "the machine" and re.match(r"[ -]learn", line[match.end():], re.I):
            continue  # "the machine learning ..." is the subject, not the build
        hits.append(match.group(0))
    return hits


def check_vocabulary(path: Path) -> list[Violation]:
    """The build's words in the story of ``path`` (outside the checked-section and appendices)."""
    violations = []
    for index, line in story_lines(load_cells(path)):
        for word in vocabulary_hits(line):
            violations.append(Violation(shown(path), index, f"build vocabulary {word!r} in the story: "
                                        f"{excerpt(line, word)}"))
    return violations


# --- machinery ----------------------------------------------------------------------------------------------------

# A ``±`` in the book is a measured spread, and its text says so; a tolerance is recorded out of sight
# (``annotated.utils.with_tolerance``) and an interval prints as ``[a, b]``.
SPREAD_LABEL = re.compile(r"\b(?:sd|std|s\.d\.|standard deviation|standard error)\b", re.I)
# What the machine that ran a cell would print about itself: none of it belongs in the story's outputs.
MACHINE_LINES: tuple[str, ...] = (
    "Linux-", "x86_64", "aarch64", "NVIDIA", "load average", "XDG_RUNTIME_DIR", "site-packages",
    "thread(s)", "/home/", "/work/", "/tmp/", "/usr/", "/root/", "C:\\",
)


def story_cells(cells: list[dict]) -> list[int]:
    """Indices of the cells (any kind) of the story: before the appendices, outside the checked section."""
    indices, in_checked = [], False
    for index, cell in enumerate(cells):
        for line in cell_source(cell).splitlines() if cell.get("cell_type") == "markdown" else []:
            if APPENDIX_HEADING.match(line):
                return indices
            if LEVEL2_HEADING.match(line):
                in_checked = bool(CHECKED_HEADING.match(line))
        if not in_checked:
            indices.append(index)
    return indices


def output_texts(cell: dict) -> list[str]:
    """Every text a code cell shows: its streams, and the plain, markdown and HTML forms of its results."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        for key in ("text/plain", "text/markdown", "text/html"):
            if key in (output.get("data") or {}):
                texts.append(output["data"][key])
    return ["".join(text) if isinstance(text, list) else text for text in texts]


def unlabelled_plus_minus(text: str) -> bool:
    return "±" in text and not SPREAD_LABEL.search(text)


def check_machinery(path: Path) -> list[Violation]:
    """The test machinery in the reader's view: an unlabelled ``±`` in any markdown or output, an nbval marker
    comment in any code cell, and a machine line in an output of the story."""
    from tools.nbmarkers import MARKER_LINE

    cells, where, violations = load_cells(path), shown(path), []
    story = set(story_cells(cells))
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            for paragraph in paragraphs(strip_out_of_scope(cell_source(cell))):
                if unlabelled_plus_minus(paragraph):
                    violations.append(Violation(where, index, f"'±' without a spread label (sd over what): "
                                                f"{excerpt(paragraph, '±')}"))
            continue
        if cell.get("cell_type") != "code":
            continue
        if any(MARKER_LINE.match(line) for line in cell_source(cell).splitlines()):
            violations.append(Violation(where, index, "an nbval marker comment (a tag instead: python -m tools.nbmarkers)"))
        for text in output_texts(cell):
            if unlabelled_plus_minus(text):
                violations.append(Violation(where, index, f"printed '±' without a spread label: {excerpt(text, '±')}"))
            for line in text.splitlines() if index in story else []:
                found = [pattern for pattern in MACHINE_LINES if pattern in line]
                if found:
                    violations.append(Violation(where, index, f"the machine in the story's output ({found[0]}): "
                                                f"{excerpt(line, found[0])}"))
    return violations


# --- width ------------------------------------------------------------------------------------------------------

MAX_COLUMNS = 100
HIDDEN_OUTPUT_TAGS = frozenset({"remove-output", "remove-cell"})
RICH_FORMS = ("text/markdown", "text/html", "image/png", "image/svg+xml", "image/jpeg")
# The chapters whose outputs fit: their built pages are held to it too (``check_html``). Chapters join one at a time.
WIDTH_CLEAN_CHAPTERS: tuple[str, ...] = ("00_utils", "02_reformer", "04_warm_starting", "05_wav2vec2", "06_q_learning")


def preformatted_texts(cell: dict) -> list[str]:
    """The texts the website shows of a code cell as preformatted lines: streams, and plain results that have no
    richer form (a result with Markdown, HTML or an image is shown in that form instead)."""
    if HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return []
    texts = []
    for output in cell.get("outputs", []):
        data = output.get("data") or {}
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif "text/plain" in data and not any(form in data for form in RICH_FORMS):
            texts.append(data["text/plain"])
    return ["".join(text) if isinstance(text, list) else text for text in texts]


def wide_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > MAX_COLUMNS]


def check_width(path: Path) -> list[Violation]:
    """Every preformatted output line the website would wrap (wider than ``MAX_COLUMNS``)."""
    where = shown(path)
    return [Violation(where, index, f"an output line of {len(line)} columns (at most {MAX_COLUMNS}): {line[:60]}...")
            for index, cell in enumerate(load_cells(path)) if cell.get("cell_type") == "code"
            for text in preformatted_texts(cell) for line in wide_lines(text)]


# --- html -------------------------------------------------------------------------------------------------------

WRAP_STYLESHEET = "_static/custom.css"
WIDGET_TEXT = "interactive(children="
DEFAULT_EXP_LINE = re.compile(r"#\|\s*default_exp\b")  # anywhere: a <pre> opens mid-line once tags are gone
TAG = re.compile(r"<[^>]+>")


def page_text(page_html: str) -> str:
    """The text a reader sees (tags dropped, entities decoded), line structure kept."""
    return html_lib.unescape(TAG.sub("", page_html))


class _OutputPreParser(HTMLParser):
    """Collects the text of every <pre> inside a ``cell_output`` <div>, tracking <div> nesting to know where it ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._div_depth = 0
        self._output_depths: list[int] = []  # the div depth at which each open cell_output began
        self._pre: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div":
            self._div_depth += 1
            if "cell_output" in (dict(attrs).get("class") or "").split():
                self._output_depths.append(self._div_depth)
        elif tag == "pre" and self._output_depths:
            self._pre = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self._pre is not None:
            self.texts.append("".join(self._pre))
            self._pre = None
        elif tag == "div":
            if self._output_depths and self._output_depths[-1] == self._div_depth:
                self._output_depths.pop()
            self._div_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._pre is not None:
            self._pre.append(data)


def output_pre_texts(page_html: str) -> list[str]:
    """The preformatted texts in the cell outputs of a built page, as a reader sees them."""
    parser = _OutputPreParser()
    parser.feed(page_html)
    return parser.texts


def check_html_page(name: str, page_html: str) -> list[str]:
    problems = []
    if Path(name).stem in WIDTH_CLEAN_CHAPTERS:
        for text in output_pre_texts(page_html):
            problems += [f"{name}: an output line of {len(line)} columns (at most {MAX_COLUMNS}): {line[:60]}..."
                         for line in wide_lines(text)]
    text = page_text(page_html)
    if WIDGET_TEXT in text:
        problems.append(f"{name}: shows widget text {WIDGET_TEXT!r} where a widget was (tag the cell remove-output)")
    if DEFAULT_EXP_LINE.search(text):
        problems.append(f"{name}: shows a '#| default_exp' line (tag that cell remove-cell)")
    if not re.search(r"<link[^>]+href=\"[^\"]*" + re.escape(WRAP_STYLESHEET), page_html):
        problems.append(f"{name}: does not link {WRAP_STYLESHEET}, so long code lines are cut off")
    return problems


def check_html(build_dir: Path) -> list[str]:
    """Problems on every chapter page of a built site (``build_dir`` is ``_build/html``)."""
    pages = sorted(Path(build_dir, "notebooks").glob("*.html"))
    if not pages:
        return [f"{build_dir}: no chapter pages under notebooks/ (was the book built?)"]
    return [p for page in pages for p in check_html_page(page.relative_to(build_dir).as_posix(), page.read_text())]


# --- audit report -----------------------------------------------------------------------------------------------


def audit_report(notebooks: list[Path], first: int = 5) -> str:
    """Markdown: per chapter and checker, the violation count and the first few (results/text_audit.md)."""
    lines = ["# Text audit: violations per chapter", "",
             "Made by `python -m tools.textcheck audit > results/text_audit.md`; the rules are in the docstring of",
             "`tools/textcheck.py`. A chapter joins `AUDITED_CHAPTERS` in `tests/test_textcheck.py` once both counts",
             "are 0.", "", "| chapter | numbers | vocabulary |", "|---|---|---|"]
    found = {path: {name: check(path) for name, check in NOTEBOOK_CHECKS.items()} for path in notebooks}
    for path, by_check in found.items():
        lines.append(f"| {path.stem} | {len(by_check['numbers'])} | {len(by_check['vocabulary'])} |")
    for path, by_check in found.items():
        lines += ["", f"## {path.stem}"]
        for name, violations in by_check.items():
            lines += ["", f"{name}: {len(violations)}" + (f" (first {first})" if len(violations) > first else "")]
            lines += [f"- cell {v.cell}: {v.message}" for v in violations[:first]]
    return "\n".join(lines) + "\n"


# --- command line -----------------------------------------------------------------------------------------------

NOTEBOOK_CHECKS = {"numbers": check_numbers, "vocabulary": check_vocabulary, "machinery": check_machinery,
                   "width": check_width}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=[*NOTEBOOK_CHECKS, "html", "audit"])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every chapter), or _build/html")
    args = parser.parse_args(argv)
    if args.check == "audit":  # a report, not a check: always succeeds
        print(audit_report(args.paths or chapter_notebooks()), end="")
        return 0
    if args.check == "html":
        problems = check_html(args.paths[0] if args.paths else Path("_build/html"))
    else:
        problems = [str(v) for path in (args.paths or chapter_notebooks()) for v in NOTEBOOK_CHECKS[args.check](path)]
    for problem in problems:
        print(problem)
    print(f"textcheck {args.check}: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
