"""Every legend memberscope draws has a fixed place: matplotlib's loc="best" searches the plotted data and warns
("can be slow with large amounts of data") when that takes over a second, which fails a loaded run under
``filterwarnings = error``."""

import ast
from pathlib import Path

import memberscope


def test_no_legend_is_placed_by_searching_the_data():
    root = Path(memberscope.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "legend":
                loc = next((k.value for k in node.keywords if k.arg == "loc"), None)
                if not isinstance(loc, ast.Constant | ast.Name) or (
                    isinstance(loc, ast.Constant) and loc.value == "best"
                ):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, offenders
