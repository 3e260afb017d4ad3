"""Safe weight loading: safetensors, or ``torch.load(weights_only=True)``; never unpickling."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import torch

from histobench.plugins.errors import WeightsError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


@lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a weights file (memoised per path, size and modification time)."""
    st = path.stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from safetensors or a weights-only torch file."""
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickled code, wrong format
        raise WeightsError(
            f"{path}: cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        ) from exc
    # Training checkpoints often nest the weights.
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load weights into a headless model: every backbone tensor must be present and fit."""
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in usable and not k.endswith("num_batches_tracked")]
    wrong = [k for k, v in usable.items() if tuple(v.shape) != tuple(own[k].shape)]
    if missing or wrong:
        what = f"{len(missing)} missing tensors (e.g. {missing[0]})" if missing else ""
        if wrong:
            what += (
                f"{'; ' if what else ''}{len(wrong)} tensors of the wrong shape (e.g. {wrong[0]})"
            )
        raise WeightsError(f"{source}: weights do not fit the architecture: {what}")
    model.load_state_dict(usable, strict=False)


def cache_roots() -> list[Path]:
    """Folders where torch hub and Hugging Face keep downloaded weights on a user's machine."""
    roots = []
    torch_home = os.environ.get("TORCH_HOME")
    roots.append(Path(torch_home) if torch_home else Path.home() / ".cache" / "torch")
    hf = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    hf_home = os.environ.get("HF_HOME")
    if hf:
        roots.append(Path(hf))
    elif hf_home:
        roots.append(Path(hf_home) / "hub")
    else:
        roots.append(Path.home() / ".cache" / "huggingface" / "hub")
    return roots


def find_cached(torch_hub_file: str | None, hf_repo: str | None) -> Path | None:
    """An already-downloaded weights file in the torch hub or Hugging Face cache, if any."""
    torch_root, hf_root = cache_roots()
    if torch_hub_file:
        candidate = torch_root / "hub" / "checkpoints" / torch_hub_file
        if candidate.is_file():
            return candidate
    if hf_repo:
        snapshots = hf_root / f"models--{hf_repo.replace('/', '--')}" / "snapshots"
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = sorted(snapshots.glob(f"*/{name}"))
            if found:
                return found[-1]
    return None
