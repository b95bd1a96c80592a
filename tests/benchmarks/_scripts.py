import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(name: str):
    """Import ``benchmarks/<name>.py`` (not a package) as the module ``name``, registered in
    ``sys.modules`` as an import would (PyG's ``MessagePassing`` reads a subclass's module
    there), replacing one imported before."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
