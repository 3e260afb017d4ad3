"""Find, read and strictly load a foundation model's weights, never downloading.

Where weights come from, in order: an explicit ``--weights`` file or Hugging Face snapshot
folder; ``HISTOBENCH_HOME/weights/<name>/``; the ``HISTOBENCH_HOME/weights.toml`` map
(``name = "path"``); an existing Hugging Face cache. Reading is memory-frugal: safetensors and
zip-format torch files are memory-mapped, the model is built on the meta device and the
checkpoint's tensors are assigned to it, so a ViT-g never exists twice in RAM.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import timm
import torch

from histobench.benchmark import home
from histobench.extractors.foundation.keymap import to_timm
from histobench.extractors.foundation.recipe import Recipe
from histobench.extractors.weights import find_cached
from histobench.plugins.errors import WeightsError

SNAPSHOT_FILES = ("model.safetensors", "pytorch_model.bin")
_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_SHOWN = 3  # keys named per kind of problem


def weights_file_in(folder: Path) -> Path | None:
    """The weights file of a snapshot folder (or of a folder holding a single weights file)."""
    for name in SNAPSHOT_FILES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    return found[0] if len(found) == 1 else None


def _explicit(path: Path) -> Path:
    if path.is_dir():
        found = weights_file_in(path)
        if found is None:
            raise WeightsError(
                f"{path}: no {' or '.join(SNAPSHOT_FILES)} (nor a single weights file) in folder"
            )
        return found
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    return path


def _toml_entry(name: str) -> Path | None:
    table = home.home() / "weights.toml"
    if not table.is_file():
        return None
    try:
        entries = tomllib.loads(table.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{table}: not a valid TOML file ({exc})") from exc
    value = entries.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WeightsError(f"{table}: '{name}' must be a path string")
    return Path(value).expanduser()


@dataclass(frozen=True)
class Located:
    path: Path | None
    searched: tuple[str, ...]  # where histobench looked, in order


def locate(recipe: Recipe, explicit: Path | None = None) -> Located:
    if explicit is not None:
        return Located(_explicit(explicit.expanduser()), (str(explicit),))
    folder = home.weights_dir() / recipe.name
    table = home.home() / "weights.toml"
    searched = [str(folder), f"{table} [{recipe.name}]"]
    if folder.is_dir() and (found := weights_file_in(folder)):
        return Located(found, tuple(searched))
    mapped = _toml_entry(recipe.name)
    if mapped is not None:
        return Located(_explicit(mapped), tuple(searched))
    if recipe.hf_repo:
        searched.append(f"Hugging Face cache: models--{recipe.hf_repo.replace('/', '--')}")
        cached = find_cached(None, recipe.hf_repo)
        if cached is not None:
            return Located(cached, tuple(searched))
    return Located(None, tuple(searched))


def require(recipe: Recipe, explicit: Path | None = None) -> Path:
    located = locate(recipe, explicit)
    if located.path is None:
        where = f" ({recipe.card})" if recipe.card else ""
        raise WeightsError(
            f"no weights for '{recipe.name}': download them yourself{where} and pass --weights "
            f"PATH, or put them in {located.searched[0]}/ (looked in: {'; '.join(located.searched)})"
        )
    return located.path


def read_state(path: Path, meta: bool = False) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (memory-mapped); with ``meta``, only their shapes."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                state: object = {
                    k: torch.empty(fh.get_slice(k).get_shape(), device="meta")
                    if meta
                    else fh.get_tensor(k)
                    for k in fh.keys()  # noqa: SIM118  (safe_open is not a mapping)
                }
        else:
            state = _torch_load(path)
    except WeightsError:
        raise
    except Exception as exc:  # truncated file, pickled code, wrong format
        first = (str(exc).splitlines() or [""])[0][:160]
        raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {first})") from exc
    for key in ("state_dict", "model", "model_state_dict", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: does not hold a state dict of tensors")
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    if meta:
        return {
            k: v if v.is_meta else torch.empty(v.shape, device="meta") for k, v in state.items()
        }
    return state


def _torch_load(path: Path) -> object:
    try:  # zip-format files memory-map; legacy ones cannot
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def build_meta(recipe: Recipe) -> torch.nn.Module:
    """The recipe's network on the meta device: its structure and shapes, no memory."""
    with torch.device("meta"):
        return timm.create_model(recipe.architecture, pretrained=False, **recipe.kwargs)


def check_fit(
    model: torch.nn.Module, state: dict[str, torch.Tensor], recipe: Recipe, source: str
) -> dict[str, torch.Tensor]:
    """The checkpoint mapped to timm names, or a WeightsError naming every kind of misfit."""
    mapped = {
        k: v for k, v in to_timm(state, recipe.key_layout).items() if k not in recipe.unused_keys
    }
    own = model.state_dict()
    for key in own:  # BatchNorm's step counter is not a weight; many checkpoints omit it
        if key.endswith("num_batches_tracked") and key not in mapped:
            mapped[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in own if k not in mapped]
    unexpected = [k for k in mapped if k not in own]
    wrong = [
        f"{k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in mapped and tuple(mapped[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        f"{len(keys)} {what} ({', '.join(keys[:_SHOWN])}{', ...' if len(keys) > _SHOWN else ''})"
        for what, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong),
        )
        if keys
    ]
    if problems:
        raise WeightsError(f"{source}: not a '{recipe.name}' checkpoint: {'; '.join(problems)}")
    return mapped


def load_model(recipe: Recipe, path: Path) -> torch.nn.Module:
    """The recipe's network with the checkpoint's weights, loaded strictly, in float32."""
    model = build_meta(recipe)
    mapped = check_fit(model, read_state(path), recipe, str(path))
    mapped = {k: v.float() if v.is_floating_point() else v for k, v in mapped.items()}
    model.load_state_dict(mapped, strict=True, assign=True)
    _rebuild_derived_buffers(model)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # a buffer the checkpoint does not hold: rebuild it on the CPU
        raise WeightsError(
            f"{path}: tensors not initialised after loading: {', '.join(left[:_SHOWN])}"
        )
    return model.eval()


def _rebuild_derived_buffers(model: torch.nn.Module) -> None:
    """Buffers computed from shapes alone (timm's non-persistent ones, e.g. a Swin window's
    relative position index and shift mask) are in no checkpoint and were built on the meta
    device: a module that can recompute them (timm's ``_init_buffers``) does so on the CPU."""
    for module in model.modules():
        derived = [
            name
            for name, buffer in module.named_buffers(recurse=False)
            if buffer.is_meta and name in module._non_persistent_buffers_set
        ]
        rebuild = getattr(module, "_init_buffers", None)
        if not derived or not callable(rebuild):
            continue
        for name in derived:
            meta = getattr(module, name)
            module.register_buffer(
                name, torch.empty(meta.shape, dtype=meta.dtype), persistent=False
            )
        rebuild()
