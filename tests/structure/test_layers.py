"""The package's structure holds (issue 19, ARCHITECTURE.md): the layers, no import cycle, sizes.

`lint-imports` checks the contracts in pyproject.toml ([tool.importlinter]): a lower layer never
imports a higher one, not even inside a function, and no package's modules import one another
in a loop. scripts/structure.py counts the same graph independently (a package's `__init__`
and its own modules included, which import-linter's sibling check does not see) and the sizes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _structure():
    spec = importlib.util.spec_from_file_location("structure", ROOT / "scripts" / "structure.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_import_loop_anywhere_in_the_package() -> None:
    result = _structure().measure(ROOT / "calsync")
    assert result["loops"] == []


def test_no_class_over_400_lines_and_no_module_over_800() -> None:
    result = _structure().measure(ROOT / "calsync")
    assert result["classes_over"] == []
    assert result["modules_over"] == []


def test_the_loop_finder_sees_a_loop_through_an_import_inside_a_function(tmp_path) -> None:
    # The measure must be able to fail: a loop hidden in a function is found.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def later():\n    from pkg.a import x\n")
    (package / "c.py").write_text("class Big:\n" + "    x = 1\n" * 401)
    result = _structure().measure(package)
    assert result["loops"] == [["pkg.a", "pkg.b"]]
    assert [name for name, _ in result["classes_over"]] == ["pkg.c.Big"]
