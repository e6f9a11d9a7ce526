"""The README and docs/: size, links that resolve inside the repository, nothing internal."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_readme_is_short():
  assert (ROOT / "README.md").stat().st_size <= 15 * 1024


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
  targets = [t for t in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", t)]
  missing = [t for t in targets
             if not (page.parent / t.split("#")[0]).resolve().exists() and not t.startswith("#")]
  assert not missing, f"{page.name}: broken links {missing}"
  for t in targets:  # nothing outside the repository
    assert ROOT in (page.parent / t.split("#")[0]).resolve().parents or t.startswith("#"), t


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_nothing_outside_the_clone(page):
  assert "shared/notes" not in page.read_text(), f"{page.name} cites a path outside the repository"


def test_license_and_citation():
  assert "Apache License" in (ROOT / "LICENSE").read_text()
  cff = (ROOT / "CITATION.cff").read_text()
  assert "cff-version:" in cff and "2203.10366" in cff
  assert "license = Apache-2.0" in (ROOT / "setup.cfg").read_text()
