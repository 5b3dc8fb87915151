"""The layout's rules (README, Architecture): import contracts, and views/APIs that write only through services."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORM_WRITES = {"save", "delete", "create", "bulk_create", "bulk_update", "get_or_create", "update_or_create",
              "update", "add", "remove", "set", "clear"}


def _orm_writes(path: Path) -> list[str]:
    """Calls like `Model.objects....update(...)`, `obj.save()` or `obj.things.add(...)` in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, ast.unparse(node.func.value)
        if method not in ORM_WRITES:
            continue
        orm_receiver = ".objects" in receiver or receiver.endswith(("_set", "model_version", "study", "participant",
                                                                    "stimulus", "job", "vote", "prediction"))
        if method in {"save"} or orm_receiver:
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_views_and_apis_write_only_through_services():
    modules = sorted((ROOT / "study" / "views").rglob("*.py")) + sorted((ROOT / "study" / "api").rglob("*.py"))
    assert modules, "the layout moved: update this test"
    writes = [hit for path in modules for hit in _orm_writes(path)]
    assert writes == [], "write through study.services instead:\n" + "\n".join(writes)


def test_the_write_detector_catches_a_direct_orm_write(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def v(study, d):\n    Study.objects.filter(pk=1).update(title='x')\n    study.save()\n"
                     "    d.update(a=1)\n")
    assert len(_orm_writes(probe)) == 2  # the plain dict's update is not a write


def test_import_contracts_hold():
    """import-linter (pyproject.toml): no Django in study.analysis, no torch on the web side, no cycles, ..."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
