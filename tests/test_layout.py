"""The package's floors, drawn from its imports: every import points down or sideways, never up,
and no modules import each other in a circle. Lazy imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "detector"
# Bottom first. A module may import from its own floor and the floors below it.
FLOORS = (
    ("detector.files", "detector.runtime"),
    ("detector.scan",),  # video, faces, tracking, crop, model, onnx, aggregation, evidence, explain, scanner
    ("detector.output",),  # results.csv, details JSON, writers, the HTML report
    ("detector.api", "detector"),  # load() and scan(); `import detector` reaches it
    ("detector.data",),  # labelled datasets, identity splits, face-crop datasets
    ("detector.evaluation",),  # metrics at its bottom, report, evaluate, robustness, pool, selection
    ("detector.training",),  # self-blending, augmentation, networks, train
    ("detector.distributed",),
    ("detector.cli", "detector.__main__"),
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(name: str) -> int:
    """The floor of a module: its longest matching prefix's."""
    matches = [(len(prefix), i) for i, prefixes in enumerate(FLOORS) for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name} is on no floor: add its folder to FLOORS"
    return max(matches)[1]


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The detector modules a file imports, anywhere in it (importlib.import_module("...") included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from detector.scan import onnx`
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return {name for name in found if name in modules}


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports."""
    root = package.parent
    files = sorted(package.rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    return {module_name(p, root): imports_of(p, modules) - {module_name(p, root)} for p in files}


def test_no_import_runs_up_a_floor():
    upward = [f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
              for module, targets in graph().items() for target in sorted(targets) if floor(target) > floor(module)]
    assert upward == []


def test_no_circles():
    edges = graph()
    # `import detector` reaches detector.api lazily, through the package's __getattr__; the package
    # itself imports nothing at import time, so it is no edge of a circle.
    edges["detector"] = set()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_the_import_graph_sees_lazy_and_from_imports(tmp_path):
    """The check itself, on a made-up package: a scan module importing the output folder, inside a
    function, is an upward arrow; `from detector.scan import model` is an edge to that module."""
    for name, text in {"scan/bad.py": "def f():\n    from detector.output.results import Row\n",
                       "scan/model.py": "", "output/results.py": "",
                       "output/writers.py": "from detector.scan import model\n"}.items():
        (tmp_path / "detector" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "detector" / name).write_text(text)
    edges = graph(tmp_path / "detector")
    assert edges["detector.scan.bad"] == {"detector.output.results"}
    assert edges["detector.output.writers"] == {"detector.scan.model"}
    assert floor("detector.scan.bad") < floor("detector.output.results")
