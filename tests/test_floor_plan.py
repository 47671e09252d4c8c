"""The floor plan of docs/design.md: each part imports only the parts below it (every import
counts, those inside functions and under TYPE_CHECKING included), and storage knows nothing
of Telegram, HTTP or HTML."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each room, and the rooms it may import (besides itself). Bottom to top, as docs/design.md draws it.
RECORDS = "storage records"  # storage.models and storage.errors: what every engine shares
BELOW: dict[str, set[str]] = {
    RECORDS: set(),
    "storage.sqlite": {RECORDS},
    "storage.postgres": {RECORDS},
    "storage": {RECORDS, "storage.sqlite", "storage.postgres"},
    "monitor": set(),  # errors, log
    "monitor.config": {"monitor"},
    "monitor.net": {"monitor", "monitor.config"},
    "monitor.sources": {"monitor", "monitor.config", "monitor.net", RECORDS},
    "monitor.alerts": {"monitor", "monitor.config", "monitor.net", "storage", RECORDS},
    "monitor.pages": {"monitor", "monitor.config", "monitor.net", "monitor.alerts", "storage", RECORDS},
    "monitor.capture": {"monitor", "monitor.config", "monitor.net", "monitor.sources", "monitor.alerts",
                        "storage", RECORDS},
    "monitor.read": {"monitor", "monitor.config", "storage", RECORDS},
    "monitor.evidence": {"monitor", "monitor.config", "monitor.net", "storage", RECORDS},
}
BELOW["monitor.daemon"] = set(BELOW) - {"monitor.daemon", "storage.sqlite", "storage.postgres"}
BELOW["monitor.cli"] = set(BELOW) - {"monitor.cli", "storage.sqlite"}  # postgres: its URLs, shown without password
# storage is the archive: no network, no HTML, no Telegram.
FOREIGN_TO_STORAGE = ("telethon", "httpx", "bs4", "lxml", "trafilatura", "apprise", "playwright", "monitor")


def room(module: str) -> str | None:
    """The room a dotted module name belongs to; None for what is not ours."""
    parts = module.split(".")
    if parts[0] == "storage":
        if len(parts) > 1 and parts[1] in ("models", "errors"):
            return RECORDS
        if len(parts) > 1 and parts[1] in ("sqlite", "postgres"):
            return f"storage.{parts[1]}"
        return "storage"
    if parts[0] == "monitor":
        if len(parts) > 1 and (ROOT / "monitor" / parts[1]).is_dir():
            return f"monitor.{parts[1]}"
        return "monitor"
    return None


def imports_of(path: Path) -> list[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").exists()
                      or (ROOT / node.module.replace(".", "/") / alias.name).is_dir()]
    return found


def arrows(package: str) -> list[tuple[str, str, str]]:
    """(file, its room, the module it imports) for every import in ``package``."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module == "monitor.__main__":
            continue  # ``python -m monitor`` is the command line
        here = room(module)
        assert here is not None
        out += [(str(path.relative_to(ROOT)), here, imported) for imported in imports_of(path)]
    return out


def test_every_room_of_the_plan_exists_and_every_package_is_in_the_plan():
    packages = {f"monitor.{p.name}" for p in (ROOT / "monitor").iterdir() if (p / "__init__.py").exists()}
    assert packages == {r for r in BELOW if r.startswith("monitor.")}


def test_each_part_imports_only_the_parts_below_it():
    wrong = []
    for package in ("monitor", "storage"):
        for path, here, imported in arrows(package):
            there = room(imported)
            if there is not None and there != here and there not in BELOW[here]:
                wrong.append(f"{path} ({here}) imports {imported} ({there})")
    assert wrong == []


def test_storage_imports_nothing_of_the_network_html_or_telegram():
    wrong = [f"{path} imports {imported}" for path, _, imported in arrows("storage")
             if imported.split(".")[0] in FOREIGN_TO_STORAGE]
    assert wrong == []


def test_every_package_says_what_it_holds_and_may_import():
    for init in sorted([*(ROOT / "monitor").glob("*/__init__.py"), *(ROOT / "storage").glob("*/__init__.py")]):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, init
