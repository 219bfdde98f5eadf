"""docs/errata.md keeps its shape: 32 numbered errors, each naming its article, and links that resolve."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ERRATA = ROOT / "docs" / "errata.md"
TEXT = ERRATA.read_text(encoding="utf-8")
NUMBER_OF_ERRORS = 32

# "| 000 | Deployment | 《…》 … |" rows of the table of the five articles
ARTICLES = dict(re.findall(r"^\| 00\d \| ([A-Za-z ]+?) \| (《[^》]+》)", TEXT, flags=re.M))
# "| [7](#7) | Deployment | … | Implicit: … |" rows of the summary table
SUMMARY = re.findall(r"^\| \[(\d+)\]\(#(\d+)\) \| ([^|]+?) \| [^|]+ \| ([^|]+?) \|$", TEXT, flags=re.M)
# one section per error: an anchor, then "### N. title", then its body up to the next anchor or "## "
SECTIONS = re.findall(r'^<a id="(\d+)"></a>\n### (\d+)\. [^\n]+\n(.*?)(?=^<a id=|^## )', TEXT, flags=re.M | re.S)
FIELDS = ("* **Article:**", "* **It says:**", "* **What is wrong:**", "* **On the course's stack:**",
          "* **Where the course")


def test_the_five_articles_are_named():
    assert set(ARTICLES) == {"Deployment", "Principles", "Foreign cases", "Ensemble learning", "After BERT"}
    assert all(title.startswith("《多模态大模型：技术原理与实战") for title in ARTICLES.values()), ARTICLES


def test_exactly_32_numbered_errors_in_order():
    headings = [int(n) for n in re.findall(r"^### (\d+)\. ", TEXT, flags=re.M)]
    assert headings == list(range(1, NUMBER_OF_ERRORS + 1))
    assert [(int(anchor), int(number)) for anchor, number, _ in SECTIONS] == [
        (n, n) for n in range(1, NUMBER_OF_ERRORS + 1)]


def test_summary_has_one_row_per_error_and_links_its_anchor():
    assert [int(n) for n, _, _, _ in SUMMARY] == list(range(1, NUMBER_OF_ERRORS + 1))
    assert all(n == anchor for n, anchor, _, _ in SUMMARY)


@pytest.mark.parametrize("number, body", [(int(n), body) for _, n, body in SECTIONS])
def test_every_error_names_its_article_and_has_every_field(number, body):
    for field in FIELDS:
        assert field in body, f"error {number} lacks {field!r}"
    article_line = body.split("* **Article:**", 1)[1].splitlines()[0]
    short_name = article_line.split(",", 1)[0].strip()
    assert short_name in ARTICLES, f"error {number} names no known article: {article_line!r}"
    assert ARTICLES[short_name] in article_line, f"error {number} lacks the article's title: {article_line!r}"
    assert re.search(r"§|section|whole article", article_line), f"error {number} names no section"
    summary_article = {int(n): article for n, _, article, _ in SUMMARY}[number]
    assert summary_article == short_name, f"error {number}: summary says {summary_article!r}"


def test_summary_verdicts_match_the_sections_and_the_totals():
    verdicts = {int(n): corrected.split(":")[0].split(" (")[0] for n, _, _, corrected in SUMMARY}
    assert set(verdicts.values()) == {"Explicit", "Implicit", "No"}, verdicts
    for _, n, body in SECTIONS:
        where = body.split("* **Where the course", 1)[1].splitlines()[0]
        assert f"({verdicts[int(n)]})" in where, f"error {n}: summary says {verdicts[int(n)]}, section: {where!r}"
    counts = {verdict: list(verdicts.values()).count(verdict) for verdict in ("Explicit", "Implicit", "No")}
    totals = f"{counts['Explicit']} explicit, {counts['Implicit']} implicit, {counts['No']} not addressed"
    assert totals in TEXT, totals


def test_relative_links_point_to_existing_files():
    targets = re.findall(r"\]\((?!https?:|#)([^)#\s]+)(?:#[^)]*)?\)", TEXT)
    notebook_links = [t for t in targets if t.startswith("../notebooks/")]
    assert len(notebook_links) >= NUMBER_OF_ERRORS, len(notebook_links)  # most errors link a notebook section
    for target in targets:
        path = (ERRATA.parent / target).resolve()
        assert path.is_file(), f"{target} does not exist"
    for target in notebook_links:
        path = (ERRATA.parent / target).resolve()
        assert path.parent == ROOT / "notebooks" and path.suffix == ".ipynb", target


def test_internal_links_point_to_anchors_that_exist():
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', TEXT))
    for target in re.findall(r"\]\(#([^)]+)\)", TEXT):
        assert target in anchors, f"#{target} has no anchor"
