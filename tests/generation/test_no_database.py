"""core.generation is pure: it imports no Django, so these tests and its users need no database."""

import subprocess
import sys

from tests.test_settings import ROOT


def test_the_generation_layer_imports_no_django():
    script = (
        "import pkgutil, importlib, sys, core.generation as g\n"
        "for m in pkgutil.iter_modules(g.__path__): importlib.import_module('core.generation.' + m.name)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'django'))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
