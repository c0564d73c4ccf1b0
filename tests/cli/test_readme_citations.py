"""Every README section a message cites exists.

calsync's messages send an operator to the documentation as `README.md, "Section"` or
`systemd/README.md, "Section"` (the section's heading, word for word). This reads every string
literal of the package (ast: implicit concatenations and f-string parts included), checks each
citation against the headings of that file, and refuses citations in any other form (`README:
Section`, a section name without quotes), which a reader could not find by searching.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r'((?:systemd/)?README\.md), "([^"]+)"')
LOOSE = re.compile(r'README(?:\.md)?(?:[,:]) *(?!")\w')


def literals() -> list[tuple[Path, int, str]]:
    found = []
    for path in sorted((ROOT / "calsync").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
                found.append((path, node.lineno, text))
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings):
                found.append((path, node.lineno, node.value))
    return found


def headings(readme: str) -> set[str]:
    text = (ROOT / readme).read_text()
    return {line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_every_cited_section_exists():
    cited = []
    for path, line, text in literals():
        for readme, section in CITATION.findall(text):
            cited.append((readme, section))
            assert section in headings(readme), (
                f"{path.relative_to(ROOT)}:{line} cites {readme}, \"{section}\": no such heading")
    # The messages this issue is about cite these; the scan must have seen them.
    assert ("systemd/README.md", "Install") in cited
    assert ("README.md", "Push notifications (optional)") in cited


def test_no_citation_in_another_form():
    loose = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path, line, text in literals()
             if LOOSE.search(text)]
    assert not loose, loose
