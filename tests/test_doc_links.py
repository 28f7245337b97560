"""The README's and docs' relative links point at files and folders of the repository."""

from __future__ import annotations

import re

import pytest

from scflow.cache import REPO_ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links and images of ``text`` that are not web addresses or
    anchors, without their ``#fragment``."""
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t.split("#", 1)[0] for t in targets
            if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_relative_links_are_found():
    text = "[a](docs/A.md), ![f](fig.png#x), [w](https://example.org), [s](#top), [m](mailto:x)"
    assert relative_links(text) == ["docs/A.md", "fig.png"]


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.relative_to(REPO_ROOT).as_posix()
                                                 for p in DOCUMENTS])
def test_every_relative_link_resolves(path):
    missing = [t for t in relative_links(path.read_text()) if not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(REPO_ROOT)}: links to missing paths {missing}"
