"""The documentation's links: every relative target exists inside the repository, every
``#anchor`` names a heading of its target, external links go only to known reference sites
(never fetched); the README stays a five-minute read. Pure Python, no model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
DOCS_PAGES = (
    "models-and-routing.md",
    "converting.md",
    "cloud-and-fog.md",
    "service.md",
    "training.md",
    "benchmarks.md",
    "layout.md",
)

# the external sites the documentation may cite, by host
EXTERNAL_HOSTS = frozenset(
    {
        "ai.google.dev",
        "arxiv.org",
        "download.pytorch.org",
        "github.com",
        "huggingface.co",
        "www.apache.org",
    }
)

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_TEXT = r"((?:[^\[\]]|\[[^\]]*\])*)"  # link text, one level of nested brackets
INLINE_LINK = re.compile(r"!?\[" + _TEXT + r"\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_USE = re.compile(r"!?\[" + _TEXT + r"\]\[([^\]]*)\]")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*<?([^\s>]+)>?")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def doc_files(root: Path) -> list[Path]:
    """README.md, docs/*.md and every README.md under reports/."""
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    files += sorted((root / "reports").glob("**/README.md"))
    return [f for f in files if f.is_file()]


def prose_lines(text: str, *, blank_code: bool = True) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks; inline code spans blanked, so that
    nothing inside backticks reads as a link."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if match and fence is None:
            fence = match.group(1)
        elif match and match.group(1) == fence:
            fence = None
        elif fence is None:
            if blank_code:
                line = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
            lines.append((number, line))
    return lines


def _label(text: str) -> str:
    return " ".join(text.split()).lower()


def extract_links(path: Path) -> list[Link]:
    """Inline links and images, reference definitions, and reference uses (``[text][label]``,
    ``[label][]``) whose label has no definition, as the target ``[label]``."""
    lines = prose_lines(path.read_text(encoding="utf-8"))
    definitions: dict[str, str] = {}
    links: list[Link] = []
    for number, line in lines:
        match = REFERENCE_DEF.match(line)
        if match:
            definitions[_label(match.group(1))] = match.group(2)
            links.append(Link(path, number, match.group(2)))
    for number, line in lines:
        if REFERENCE_DEF.match(line):
            continue
        links += [Link(path, number, m.group(2)) for m in INLINE_LINK.finditer(line)]
        for m in REFERENCE_USE.finditer(line):
            label = _label(m.group(2) or m.group(1))
            if label not in definitions:  # a defined one is checked at its definition
                links.append(Link(path, number, f"[{label}]"))
    return links


def slugify(heading: str) -> str:
    """GitHub's anchor of a heading: link text kept, tags dropped, lowercase, every character
    but letters, digits, '-', '_' and spaces dropped, each space a '-'."""
    text = INLINE_LINK.sub(lambda m: m.group(1), heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def heading_slugs(path: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    slugs: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), blank_code=False):
        match = HEADING.match(line)
        if match:
            slug = slugify(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def check_link(link: Link, root: Path) -> str | None:
    """Why the link is broken, or None when it is fine."""
    root = root.resolve()
    where = f"{link.source.relative_to(root)}:{link.line}: {link.target!r}"
    if not link.target or link.target.startswith("["):
        return f"{where}: no target (an undefined reference?)"
    parts = urlsplit(link.target)
    if parts.scheme in ("http", "https"):
        if parts.hostname in EXTERNAL_HOSTS:
            return None
        return f"{where}: {parts.hostname!r} is not a known reference site"
    if parts.scheme or parts.netloc:
        return f"{where}: only relative links and known http(s) sites are allowed"
    if parts.path.startswith("/"):
        return f"{where}: an absolute path; link relative to the file instead"
    target = (link.source.parent / unquote(parts.path)).resolve() if parts.path else link.source
    if not target.is_relative_to(root):
        return f"{where}: points outside the repository"
    if not target.exists():
        return f"{where}: {target.relative_to(root)} does not exist"
    if parts.fragment:
        if target.suffix != ".md" or not target.is_file():
            return f"{where}: an anchor needs a Markdown file"
        if unquote(parts.fragment).lower() not in heading_slugs(target):
            return f"{where}: no heading has the anchor #{parts.fragment}"
    return None


def broken_links(root: Path) -> list[str]:
    root = root.resolve()
    problems = []
    for path in doc_files(root):
        for link in extract_links(path):
            problem = check_link(link, root)
            if problem is not None:
                problems.append(problem)
    return problems


def test_readme_is_a_five_minute_read() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES


def test_every_link_of_the_docs_resolves() -> None:
    files = doc_files(ROOT)
    assert {f.name for f in files if f.parent == ROOT / "docs"} >= set(DOCS_PAGES)
    assert sum(len(extract_links(f)) for f in files) > 50  # the extractor finds links at all
    assert broken_links(ROOT) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    targets = {link.target.split("#")[0] for link in extract_links(ROOT / "README.md")}
    assert {f"docs/{page}" for page in DOCS_PAGES} <= targets


@pytest.mark.parametrize(
    ("markdown", "reason"),
    [
        ("[gone](missing.md)", "does not exist"),
        ("[gone](other.md#nowhere)", "no heading has the anchor"),
        ("[self](#not-a-heading)", "no heading has the anchor"),
        ("[up](../outside.md)", "outside the repository"),
        ("[root](/etc/passwd)", "absolute path"),
        ("[web](https://example.com/page)", "not a known reference site"),
        ("[mail](mailto:someone@example.com)", "only relative links"),
        ("[ref][undefined]", "undefined reference"),
        ("[ref][x]\n\n[x]: missing.md", "does not exist"),
        ("![plot](missing.png)", "does not exist"),
        ("[dir anchor](sub#a)", "needs a Markdown file"),
    ],
)
def test_the_checker_finds_a_broken_link(tmp_path: Path, markdown: str, reason: str) -> None:
    (tmp_path / "outside.md").write_text("# Outside\n", encoding="utf-8")
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "other.md").write_text("# Other\n", encoding="utf-8")
    (root / "README.md").write_text(f"# Title\n\n{markdown}\n", encoding="utf-8")
    problems = broken_links(root)
    assert len(problems) == 1 and reason in problems[0], problems


def test_the_checker_accepts_good_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = "# Page\n\n## Calibrated routing (`--signal calibrated`)\n\n## Notes\n\n## Notes\n"
    (tmp_path / "docs" / "page.md").write_text(page, encoding="utf-8")
    readme = (
        "# Fog tiers: one node as another's cloud\n\n"
        "[a](docs/page.md#calibrated-routing---signal-calibrated) [b](docs/page.md#notes-1)\n"
        "[c](#fog-tiers-one-node-as-anothers-cloud) [d](docs/) [e][ref] "
        "[f](https://huggingface.co/issai/foggen) `[not a link](missing.md)`\n\n"
        "```sh\n[also not](missing.md)\n```\n\n[ref]: docs/page.md\n"
    )
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    assert len(extract_links(tmp_path / "README.md")) == 6
    assert broken_links(tmp_path) == []


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Fog tiers: one node as another's cloud", "fog-tiers-one-node-as-anothers-cloud"),
        ("Decoding modes (`--mode`)", "decoding-modes---mode"),
        ("HTTP: `/v1/answer` and the OpenAI chat API", "http-v1answer-and-the-openai-chat-api"),
        ("Checked against llama.cpp and transformers", "checked-against-llamacpp-and-transformers"),
        ("A [linked](x.md) snake_case heading", "a-linked-snake_case-heading"),
    ],
)
def test_slugs_follow_github(heading: str, slug: str) -> None:
    assert slugify(heading) == slug
