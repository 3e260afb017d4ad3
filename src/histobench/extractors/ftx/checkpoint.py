"""Per-epoch checkpoints: tensors in safetensors, everything else in JSON; never pickles.

``checkpoint-eNNNN.safetensors`` holds the model, the optimizer's state tensors and the RNG
states; ``checkpoint.json`` names the latest one and holds epoch, step, history and the run's
identity. Each file is written to a temporary name and moved into place with ``os.replace``,
and the JSON is replaced only after its tensor file is complete, so a crash at any moment
leaves a consistent checkpoint behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from histobench.plugins.errors import ConfigError

CHECKPOINT_JSON = "checkpoint.json"
MODEL = "model."
OPTIM = "optim."
RNG_CPU = "rng.torch_cpu"
RNG_CUDA = "rng.torch_cuda"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), meta)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state: tensors by '<param index>.<name>', the rest as JSON."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{OPTIM}{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(OPTIM):
            idx, key = name[len(OPTIM) :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for idx, extra in info.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def save_checkpoint(
    out: Path,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    info: dict[str, Any],
) -> Path:
    tensors = {MODEL + k: v for k, v in model.state_dict().items()}
    optim_info: dict[str, Any] = {}
    if optimizer is not None:
        optim_tensors, optim_info = optimizer_tensors(optimizer)
        tensors.update(optim_tensors)
    tensors[RNG_CPU] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors[RNG_CUDA] = torch.cuda.get_rng_state()
    name = f"checkpoint-e{epoch:04d}.safetensors"
    atomic_save_tensors(out / name, tensors, {"format": "histobench-ftx-checkpoint"})
    record = {**info, "epoch": epoch, "tensors": name, "optimizer": optim_info}
    atomic_write_text(out / CHECKPOINT_JSON, json.dumps(record, indent=1, default=str))
    # Older tensor files are garbage only once the JSON points past them.
    for old in out.glob("checkpoint-e*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return out / name


def read_checkpoint_info(out: Path) -> dict[str, Any] | None:
    path = out / CHECKPOINT_JSON
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable checkpoint ({exc}); pass --overwrite") from exc
    if not isinstance(info, dict) or "identity" not in info:
        raise ConfigError(f"{path}: not a histobench fine-tuning checkpoint; pass --overwrite")
    return info


def load_checkpoint_tensors(out: Path, info: dict[str, Any]) -> dict[str, torch.Tensor]:
    path = out / str(info.get("tensors", ""))
    try:
        return load_file(str(path))
    except Exception as exc:  # missing or truncated file
        raise ConfigError(
            f"{path}: checkpoint tensors unreadable ({type(exc).__name__}); pass --overwrite"
        ) from exc


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    if RNG_CPU in tensors:
        torch.set_rng_state(tensors[RNG_CPU])
    if RNG_CUDA in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors[RNG_CUDA])


def model_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(MODEL) :]: v for k, v in tensors.items() if k.startswith(MODEL)}
