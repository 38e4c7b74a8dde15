"""Which files the generator writes, and their text."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from ..models.family import MODELS, model_spec
from .cpp_header import header_source
from .forward import differentiate
from .numba_module import module_source
from .torch_module import CoupledRecursionError, torch_source
from .torchscript_module import torchscript_source
from .trace import trace

PACKAGE = Path(__file__).resolve().parents[1]
KERNELS_DIR = PACKAGE / "kernels" / "generated"
HEADERS_DIR = PACKAGE / "export" / "generated"
TORCHSCRIPT_DIR = PACKAGE / "export" / "torchscript"
TORCH_KERNELS_DIR = PACKAGE / "kernels" / "torch_generated"


def generated_files(models: Iterable[str] | None = None) -> Iterator[tuple[Path, str]]:
    """(path, text) of every generated file of ``models`` (default: the whole family); text None: a file
    the member does not have (a torch objective the generator cannot write: :class:`CoupledRecursionError`,
    no member of today's family)."""
    for name in models or MODELS:
        spec = model_spec(name)
        derived = differentiate(trace(spec))
        yield KERNELS_DIR / f"{spec.module_name}.py", module_source(derived)
        yield HEADERS_DIR / f"{spec.module_name}.hpp", header_source(derived)
        yield TORCHSCRIPT_DIR / f"{spec.module_name}.py", torchscript_source(derived)
        try:
            torch_text = torch_source(derived)
        except CoupledRecursionError:  # no torch objective for this member: its file must not exist
            torch_text = None
        yield TORCH_KERNELS_DIR / f"{spec.module_name}.py", torch_text


def orphaned_files() -> list[Path]:
    """Generated files of members the family no longer has (a renamed or removed member)."""
    members = {model_spec(name).module_name for name in MODELS}
    folders = ((KERNELS_DIR, ".py"), (HEADERS_DIR, ".hpp"), (TORCHSCRIPT_DIR, ".py"), (TORCH_KERNELS_DIR, ".py"))
    return sorted(path for folder, suffix in folders for path in folder.glob(f"*{suffix}")
                  if path.stem not in members and path.stem != "__init__")
