"""The README and docs/ stay whole: every relative link and picture is there, and the install section
names the X11 packages the app asks for when they are missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from desktop.platform_check import USUALLY_MISSING, XCB_LIBRARIES

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_picture_is_there(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}"


def test_the_readme_names_the_x11_packages_for_apt_and_dnf() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    apt = next(line for line in readme.splitlines() if line.startswith("sudo apt install"))
    dnf = next(line for line in readme.splitlines() if line.startswith("sudo dnf install"))
    for soname in USUALLY_MISSING:
        debian, fedora = XCB_LIBRARIES[soname]
        assert debian in apt.split() and fedora in dnf.split(), soname
