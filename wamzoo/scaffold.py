"""``wamzoo new-plugin NAME``: write a working plugin package from ``templates/plugin``."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates" / "plugin"
#: template file -> path in the new package ({pkg} is the Python package suffix)
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "__init__.py.tmpl": "wamzoo_{pkg}/__init__.py",
    "step_embedding.py.tmpl": "wamzoo_{pkg}/step_embedding.py",
    "recipe.yaml.tmpl": "wamzoo_{pkg}/recipes/{name}-tiny.yaml",
    "test_plugin.py.tmpl": "tests/test_{pkg}.py",
}


def new_plugin(name: str, parent: Path) -> Path:
    """Create ``parent/name`` with a component, a recipe and tests; returns the folder."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValueError(f"plugin name {name!r}: use lowercase letters, digits and dashes, starting with a letter")
    pkg = name.replace("-", "_")
    folder = Path(parent) / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; choose another name or --dir")
    for src, dst in LAYOUT.items():
        text = (TEMPLATES / src).read_text().replace("{{name}}", name).replace("{{pkg}}", pkg)
        out = folder / dst.format(pkg=pkg, name=name)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    (folder / "README.md").write_text(f"# wamzoo-{name}\n\nA wamzoo plugin. Install with `pip install -e .`, then"
                                      f" `wamzoo list '{name}*'` and `wamzoo train {name}-tiny`.\n")
    return folder
