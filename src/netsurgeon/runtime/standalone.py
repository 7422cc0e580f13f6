"""Write a network as a standalone PyTorch module: ``OUT.py`` (needs torch only) + weights.

``OUT.py`` is readable source: the kernel helpers the generated code calls (copied from
``runtime/_kernels.py``), the module class (copied from ``runtime/_module_base.py``), the
generated evaluation and training code, and a ``load()`` that reads ``OUT.safetensors``
beside it with a small reader of the safetensors format (so not even the ``safetensors``
package is needed). The code is the same that :func:`~netsurgeon.runtime.module.to_torch`
runs, printed instead of compiled in memory.
"""

from __future__ import annotations

import ast
import inspect
import os
import pprint
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from netsurgeon import __version__
from netsurgeon.errors import EvaluationError
from netsurgeon.formats._atomic import atomic_write
from netsurgeon.graph import Network, Node
from netsurgeon.runtime import _kernels, _module_base
from netsurgeon.runtime.module import ModuleParts, module_parts

__all__ = ["write_module", "module_source"]

_READER = '''
_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
           "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (8-byte header size, JSON header, raw data)."""
    data = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    base = 8 + size
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        flat = torch.frombuffer(bytearray(data[base + begin:base + end]), dtype=dtype) \\
            if end > begin else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(info["shape"])
    return out


def load(path: str | Path | None = None, device: str | torch.device = "cpu") -> Network:
    """The module with its weights (default: the .safetensors file beside this one), in
    evaluation mode; ``.train()`` switches BatchNormalization and Dropout."""
    path = Path(path) if path is not None else Path(__file__).with_suffix(".safetensors")
    model = Network(SPEC, forward_eval, globals().get("forward_train"), None, constants())
    model.load_state_dict(read_safetensors(path))
    return model.to(device).eval()
'''


def _kernel_sources(texts: Iterable[str]) -> str:
    """The top-level definitions of ``_kernels`` the code uses (``K.name``), with what
    they use in turn, in file order, and ``K``, a namespace of the functions."""
    tree = ast.parse(inspect.getsource(_kernels))
    lines = inspect.getsource(_kernels).splitlines()
    defs: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            defs[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            for t in stmt.targets:
                if t.id != "__all__":
                    defs[t.id] = stmt
    wanted = {name for text in texts for name in _k_names(text)}
    todo = list(wanted)
    while todo:
        for node in ast.walk(defs[todo.pop()]):
            if isinstance(node, ast.Name) and node.id in defs and node.id not in wanted:
                wanted.add(node.id)
                todo.append(node.id)
    chunks = []
    for stmt in tree.body:
        names = {stmt.name} if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) else \
            {t.id for t in getattr(stmt, "targets", []) if isinstance(t, ast.Name)}
        if names & wanted:
            chunks.append("\n".join(lines[stmt.lineno - 1:stmt.end_lineno]))
    funcs = sorted(n for n in wanted if isinstance(defs[n], ast.FunctionDef))
    chunks.append("K = types.SimpleNamespace(\n" + "".join(f"    {n}={n},\n" for n in funcs) + ")")
    return "\n\n\n".join(chunks)


def _k_names(text: str) -> set[str]:
    return {node.attr for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "K"}


def _constant_expr(value: torch.Tensor) -> str:
    """A torch expression rebuilding a constant exactly (float repr round-trips)."""
    arr = value.detach().cpu().numpy()
    dtype = f"torch.{str(value.dtype).split('.')[-1]}"
    flat = arr.reshape(-1)
    if flat.size and (flat == flat[0]).all():
        return f"torch.full({tuple(arr.shape)!r}, {float(flat[0])!r}, dtype={dtype})"
    return f"torch.tensor({flat.tolist()!r}, dtype={dtype}).reshape({tuple(arr.shape)!r})"


def module_source(parts: ModuleParts) -> str:
    """The text of the standalone ``.py`` file for ``parts``."""
    spec = parts.spec
    texts = [s.text for s in parts.sources.values()]
    base = inspect.getsource(_module_base.NetworkModule)
    ins = ", ".join(f"{arg}=..." for _, arg, _ in spec["inputs"])
    seq = ", lengths=..." if spec["sequences"] else ""
    doc = (f'"""{spec["name"]} as a standalone PyTorch module, written by netsurgeon '
           f"{__version__}.\n\nNeeds only torch. The weights are in the .safetensors file of "
           "the same name beside this one:\n\n"
           f"    model = load()\n    out = model({ins}{seq})  # {{output: tensor}}\n\n"
           f"{parts.forward.splitlines()[1].strip()[1:-1]}\n"
           + ("" if "train" in parts.sources else
              f"\nTraining mode is not available: {spec['train_error']}\n")
           + '"""')
    consts = "\n".join(f"        {k!r}: {_constant_expr(v)}," for k, v in parts.constants.items())
    forward = "\n".join("    " + line if line else line for line in parts.forward.splitlines())
    sections = [
        doc,
        "from __future__ import annotations\n\nimport json\nimport math\nimport struct\n"
        "import types\nfrom collections.abc import Callable, Mapping\nfrom pathlib import Path\n"
        "from typing import Any, NoReturn\n\nimport torch\nimport torch.nn.functional as F",
        "# ---- kernel helpers (netsurgeon.runtime._kernels) ----\n\n"
        + _kernel_sources(texts),
        "# ---- the module (netsurgeon.runtime._module_base) ----\n\n" + base.rstrip(),
        "# ---- generated code ----\n\n" + "\n\n\n".join(t.rstrip() for t in texts),
        "SPEC = " + pprint.pformat(spec, width=96, sort_dicts=False),
        "def constants() -> dict[str, torch.Tensor]:\n"
        "    \"\"\"The generated code's constants.\"\"\"\n"
        "    return {\n" + consts + ("\n" if consts else "") + "    }",
        "class Network(NetworkModule):\n"
        f"    \"\"\"{spec['name']}.\"\"\"\n\n" + forward,
        _READER.strip(),
    ]
    return "\n\n\n".join(sections) + "\n"


def write_module(net: Network, path: str | os.PathLike[str],
                 outputs: Iterable[Node | str] | None = None) -> tuple[Path, Path]:
    """Write ``net`` as ``PATH`` (a ``.py`` file needing only torch) and its weights as
    ``PATH`` with the suffix ``.safetensors``; both written atomically.

    Args:
        net: a network whose parameters hold values (not changed).
        path: the ``.py`` file to write; its stem is the module name users import.
        outputs: nodes or names to compute (default: output, criterion and evaluation nodes).

    Returns:
        The two paths written. ``import OUT; model = OUT.load()`` gives the module of
        :func:`~netsurgeon.runtime.module.to_torch`: same inputs, outputs, state-dict keys.
    """
    import safetensors.numpy

    path = Path(path)
    weights = path.with_suffix(".safetensors")
    parts = module_parts(net, outputs)
    arrays: dict[str, np.ndarray] = {}
    for attr, nodes, _, _, _ in parts.spec["state"]:
        value = parts.tensors[attr].numpy()
        for node in nodes:
            if node == "__metadata__":
                raise EvaluationError("a node named '__metadata__' cannot be stored in a "
                                      "safetensors file; rename it", node=node)
            arrays[node] = value
    blob = safetensors.numpy.save(arrays, metadata={"format": "pt", "written_by": "netsurgeon"})
    text = module_source(parts)
    with atomic_write(weights) as f:
        f.write(blob)
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
    return path, weights

