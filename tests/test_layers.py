"""The architecture holds: the import contracts declared in pyproject.toml (``[tool.importlinter]``).

``lint-imports`` checks them on every import statement, those inside functions included: the core
is layered (no module imports a higher layer, so there is no cycle), the core imports no plugin,
registering plugins needs no torch, and the plugins stand alone. A failure prints import-linter's
report: the offending import chain and the contract it breaks.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIGHT = ("torch", "lightning", "diffusers", "timm")


def test_import_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.is_file(), f"{exe} is missing: install the test extra (pip install -e '.[test]')"
    proc = subprocess.run([str(exe), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        "an import breaks the architecture declared in pyproject.toml [tool.importlinter] (a new core module"
        " needs a layer there):\n" + proc.stdout[-6000:] + proc.stderr[-2000:])
    assert "0 broken" in proc.stdout


def test_registering_every_plugin_and_listing_imports_no_torch():
    """What the static contract cannot see: the plugins' entry points, loaded at run time, and `wamzoo list`."""
    script = ("import sys, io, contextlib\n"
              "from wamzoo.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
              "    assert main(['list', '--plain']) == 0\n"
              "assert 'pretrained\\tfast-wam.mw-easy-small' in out.getvalue(), out.getvalue()\n"
              f"print([m for m in {LIGHT!r} if m in sys.modules])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", f"registering plugins imported {proc.stdout.strip()}"
