"""The two-step FTX recipe: step 1 trains Part B on a frozen Part A, step 2 fine-tunes Part A
under a frozen Part B. A checkpoint after every epoch makes a rerun of the same command resume;
on CPU (deterministic algorithms, seeded data order per epoch) the resumed result is bitwise
identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from histobench.benchmark import home
from histobench.benchmark.progress import make_progress, rate_text
from histobench.extractors.backbones import Backbone, build_backbone, timm_name
from histobench.extractors.ftx import checkpoint as ckpt
from histobench.extractors.ftx.card import CARD, CURVES, WEIGHTS, plot_curves, versions, write_card
from histobench.extractors.ftx.data import TileImages, TrainingData, load_training_data, make_loader
from histobench.extractors.ftx.model import FTXModel, make_head
from histobench.extractors.ftx.recipe import FinetuneRecipe, RunOptions
from histobench.extractors.weights import file_digest
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.specs import digest

# Test hook: exit hard (no cleanup, like a kill) right after the checkpoint of this epoch.
EXIT_AFTER_EPOCH_ENV = "HISTOBENCH_FTX_EXIT_AFTER_EPOCH"
SCAN_FILE = "scan.json"
OUR_FILES = (WEIGHTS, CARD, CURVES, ckpt.CHECKPOINT_JSON, SCAN_FILE)


@dataclass
class FinetuneResult:
    out: Path
    card: dict[str, Any]
    resumed_from_epoch: int  # 0 for a fresh run
    already_complete: bool = False


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(device)


def default_workers(device: torch.device) -> int:
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        return min(8, cores)
    return 1 if cores <= 4 else min(4, cores // 2)


@contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """Deterministic kernels for the run only; the caller's setting is restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


@contextmanager
def _cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """On GPU, autotuned kernels: speed over bitwise reproducibility (CPU runs are exact)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled or before
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _autocast(device: torch.device) -> AbstractContextManager[Any]:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


# -- the run's identity and the output folder ---------------------------------------------------


def run_identity(recipe: FinetuneRecipe, data: TrainingData, backbone: Backbone) -> dict[str, Any]:
    """Everything that decides the trained weights (not paths, device or worker count)."""
    return {
        "recipe": recipe.model_dump(mode="json"),
        "data_digest": data.digest,
        "classes": data.classes,
        "backbone_model": timm_name(recipe.backbone),
        "backbone_weights_digest": backbone.weights_digest,
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = [
        f"recipe.{k}"
        for k in sorted(set(old.get("recipe", {})) | set(new["recipe"]))
        if old.get("recipe", {}).get(k) != new["recipe"].get(k)
    ]
    names = {
        "data_digest": "data",
        "classes": "classes",
        "backbone_model": "backbone model",
        "backbone_weights_digest": "backbone weights",
    }
    diffs += [label for key, label in names.items() if old.get(key) != new.get(key)]
    return diffs or ["identity"]


def _clear_outputs(out: Path) -> None:
    """--overwrite removes only what a fine-tuning run writes, never a user's other files."""
    for name in OUR_FILES:
        (out / name).unlink(missing_ok=True)
    for old in out.glob("checkpoint-e*.safetensors"):
        old.unlink()


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One fine-tuning process per --out; the OS drops the lock if the process is killed."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(f"--out {out}: in use by another 'bench finetune' process") from exc
        yield


def _prepare_out(out: Path, overwrite: bool) -> dict[str, Any] | None:
    """Check --out; returns the checkpoint info found there (None for a fresh folder)."""
    if overwrite:
        return None
    info = ckpt.read_checkpoint_info(out)
    if info is None and ((out / CARD).exists() or (out / WEIGHTS).exists()):
        raise ConfigError(
            f"--out {out}: holds fine-tuning outputs without a checkpoint; "
            "pass --overwrite or choose another --out"
        )
    return info


# -- training ----------------------------------------------------------------------------------


class _Trainer:
    def __init__(
        self,
        recipe: FinetuneRecipe,
        data: TrainingData,
        model: FTXModel,
        device: torch.device,
        workers: int,
    ) -> None:
        self.recipe = recipe
        self.data = data
        self.model = model
        self.device = device
        self.workers = workers
        self.labels = torch.as_tensor(data.labels)
        self.cache_step1 = recipe.step1_cache_features and recipe.augment == "none"
        self._features: dict[str, torch.Tensor] = {}
        self.feature_pass: dict[str, float] = {}

    def images(self, which: str, preprocess: Any) -> TileImages:
        idx = self.data.train if which == "train" else self.data.val
        return TileImages(
            [self.data.items[i].path for i in idx], self.data.labels[idx].tolist(), preprocess
        )

    def _batches(self, dataset: TileImages, order: np.ndarray | None) -> Iterator:
        loader = make_loader(
            dataset, order, self.recipe.batch_size, self.workers, pin=self.device.type == "cuda"
        )
        for local, images, labels, bad in loader:
            if bad:  # every tile decoded during the scan; a failure now means the file changed
                item = dataset.paths[bad[0][0]]
                raise DataError(f"{item}: became unreadable during training ({bad[0][1]})")
            yield (
                local,
                images.to(self.device, non_blocking=True).contiguous(
                    memory_format=torch.channels_last
                ),
                labels.to(self.device, non_blocking=True),
            )

    # Step 1 with a frozen, eval-mode Part A: its pooled features never change, so compute once.
    # (no_grad, not inference_mode: the head's backward must be able to save these inputs.)
    @torch.no_grad()
    def pooled_features(self, which: str, preprocess: Any, progress: Any) -> torch.Tensor:
        if which not in self._features:
            dataset = self.images(which, preprocess)
            self.model.backbone.eval()
            out = torch.empty(len(dataset), self.model.head.fc1.in_features, device=self.device)
            bar = progress.add_task(f"step 1: Part A features ({which})", total=len(out), rate="")
            t0, done = time.perf_counter(), 0
            for local, images, _ in self._batches(dataset, None):
                with _autocast(self.device):
                    out[local] = self.model.backbone(images).flatten(1).float()
                done += len(local)
                rate = rate_text(done, time.perf_counter() - t0, "img")
                progress.update(bar, advance=len(local), rate=rate)
            seconds = time.perf_counter() - t0
            self.feature_pass[f"{which}_images"] = len(dataset)
            self.feature_pass[f"{which}_seconds"] = seconds
            self._features[which] = out
        return self._features[which]

    def _flip(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        flips = (torch.rand((images.shape[0], 2), generator=gen) < 0.5).to(images.device)
        images = torch.where(flips[:, 0, None, None, None], images.flip(3), images)
        return torch.where(flips[:, 1, None, None, None], images.flip(2), images)

    def train_epoch(
        self,
        epoch: int,
        step: int,
        optimizer: torch.optim.Optimizer,
        preprocess: Any,
        progress: Any,
    ) -> dict[str, float]:
        r = self.recipe
        n = len(self.data.train)
        # The data order depends only on (seed, epoch): a resumed epoch sees the same batches.
        order = np.random.default_rng([r.seed, epoch]).permutation(n)
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([r.seed, epoch, 1]).generate_state(1)[0])
        )
        self._set_modes(step)
        if step == 2 and r.step2_batchnorm == "train" and n % r.batch_size == 1 and n > 1:
            # A trailing batch of one tile cannot give batch-norm statistics; that epoch's
            # last tile in the (seeded) order sits out, a different one each epoch.
            order = order[:-1]
        total_loss, correct, seen = 0.0, 0, 0
        what = f"step {step} epoch {epoch}/{r.total_epochs}"
        bar = progress.add_task(what, total=len(order), rate="")
        t0 = time.perf_counter()
        if step == 1 and self.cache_step1:
            feats = self.pooled_features("train", preprocess, progress)
            labels_dev = self.labels[self.data.train].to(self.device)
            t0 = time.perf_counter()
            batches: Iterator = (
                (idx, feats[idx], labels_dev[idx])
                for idx in (
                    torch.as_tensor(order[i : i + r.batch_size]).to(self.device)
                    for i in range(0, len(order), r.batch_size)
                )
            )
        else:
            batches = self._batches(self.images("train", preprocess), order)
        for _, inputs, labels in batches:
            if step == 1 and not self.cache_step1:
                if r.augment == "flips":
                    inputs = self._flip(inputs, gen)
                with torch.no_grad(), _autocast(self.device):
                    inputs = self.model.backbone(inputs).flatten(1)
                inputs = inputs.float()
            elif step == 2 and r.augment == "flips":
                inputs = self._flip(inputs, gen)
            with _autocast(self.device):
                logits = self.model.head(inputs) if step == 1 else self.model(inputs)
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            b = int(labels.shape[0])
            total_loss += float(loss.detach()) * b
            correct += int((logits.argmax(1) == labels).sum())
            seen += b
            progress.update(bar, advance=b, rate=rate_text(seen, time.perf_counter() - t0, "img"))
        seconds = time.perf_counter() - t0
        return {
            "train_loss": total_loss / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "seconds": seconds,
            "images_per_s": seen / seconds if seconds > 0 else 0.0,
        }

    @torch.inference_mode()
    def validate(self, step: int, preprocess: Any, progress: Any) -> dict[str, float | None]:
        if len(self.data.val) == 0:
            return {"val_loss": None, "val_acc": None}
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        if step == 1 and self.cache_step1:
            feats = self.pooled_features("val", preprocess, progress)
            labels = self.labels[self.data.val].to(self.device)
            batches: Iterator = iter([(None, feats, labels)])
        else:
            batches = self._batches(self.images("val", preprocess), None)
        for _, inputs, labels in batches:
            with _autocast(self.device):
                logits = (
                    self.model.head(inputs)
                    if step == 1 and self.cache_step1
                    else self.model(inputs)
                ).float()
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
            seen += int(labels.shape[0])
        return {"val_loss": total_loss / seen, "val_acc": correct / seen}

    def _set_modes(self, step: int) -> None:
        # Step 1: Part A frozen *including* its batch-norm statistics (eval mode).
        # Step 2: Part B frozen; Part A's batch norm per the recipe (Keras fit(): training mode).
        train_backbone = step == 2
        for p in self.model.backbone.parameters():
            p.requires_grad_(train_backbone)
        for p in self.model.head.parameters():
            p.requires_grad_(not train_backbone)
        self.model.head.train()
        self.model.backbone.train(train_backbone and self.recipe.step2_batchnorm == "train")

    def optimizer(self, step: int) -> torch.optim.Optimizer:
        params = self.model.head.parameters() if step == 1 else self.model.backbone.parameters()
        lr = self.recipe.lr1 if step == 1 else self.recipe.lr2
        return torch.optim.Adam(params, lr=lr, eps=self.recipe.adam_eps)


def _step_of(epoch: int, recipe: FinetuneRecipe) -> int:
    return 1 if epoch <= recipe.step1_epochs else 2


def finetune(recipe: FinetuneRecipe, run: RunOptions) -> FinetuneResult:
    """Run (or resume) the recipe; writes weights, model card and curves to ``run.out``."""
    out = run.out.expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        return _finetune(recipe, run, out)


def _finetune(recipe: FinetuneRecipe, run: RunOptions, out: Path) -> FinetuneResult:
    t_start = time.perf_counter()
    device = resolve_device(run.device)
    workers = run.num_workers if run.num_workers is not None else default_workers(device)
    info = _prepare_out(out, run.overwrite)

    backbone = build_backbone(
        recipe.backbone,
        weights=run.weights,
        weights_dir=home.weights_dir(),
        pretrained=recipe.pretrained,
        seed=recipe.seed,
        input_size=recipe.input_size,
    )
    known_bad = _known_bad(out, info)
    data = load_training_data(
        run.data.expanduser(), recipe.val_fraction, recipe.seed, recipe.classes, workers, known_bad
    )
    identity = run_identity(recipe, data, backbone)
    identity_digest = digest(identity, length=32)
    if info is not None and info.get("identity_digest") != identity_digest:
        what = ", ".join(_differences(info.get("identity", {}), identity))
        raise ConfigError(
            f"--out {out}: holds a checkpoint of a different fine-tuning run ({what} differ); "
            "pass --overwrite or choose another --out"
        )
    if info is not None and info.get("complete") and (out / WEIGHTS).is_file():
        card = _read_existing_card(out)
        return FinetuneResult(out, card, int(info["epoch"]), already_complete=True)
    if info is None:
        _clear_outputs(out)
    ckpt.atomic_write_text(
        out / SCAN_FILE,
        _json(
            {
                "data_digest": data.digest,
                "unreadable": {s.item_id: s.reason for s in data.unreadable},
            }
        ),
    )

    cpu = device.type == "cpu"
    head = make_head(backbone.feature_dim, recipe.hidden_dim, len(data.classes), recipe.seed)
    # channels_last: faster for these convnets on GPU and, measured, on CPU (benchmarks/).
    model = FTXModel(backbone.model, head).to(device).to(memory_format=torch.channels_last)
    trainer = _Trainer(recipe, data, model, device, workers)
    preprocess = backbone.preprocessing

    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _deterministic(cpu), _cudnn_benchmark(not cpu):
        torch.manual_seed(recipe.seed)
        history: list[dict[str, Any]] = []
        start, saved_step, saved_tensors = 1, 0, None
        wall_before, resumes = 0.0, 0
        if info is not None:
            saved_tensors = ckpt.load_checkpoint_tensors(out, info)
            model.load_state_dict(ckpt.model_tensors(saved_tensors))
            ckpt.restore_rng(saved_tensors)
            history = list(info.get("history", []))
            start, saved_step = int(info["epoch"]) + 1, int(info.get("step", 0))
            wall_before, resumes = float(info.get("wall_s", 0.0)), int(info.get("resumes", 0)) + 1
        optimizer: torch.optim.Optimizer | None = None
        current_step = 0
        exit_after = int(os.environ.get(EXIT_AFTER_EPOCH_ENV, "0") or 0)
        with make_progress("img") as progress:
            for epoch in range(start, recipe.total_epochs + 1):
                step = _step_of(epoch, recipe)
                if step != current_step:
                    optimizer = trainer.optimizer(step)
                    if info and saved_tensors and step == saved_step and epoch == start:
                        ckpt.restore_optimizer(optimizer, saved_tensors, info["optimizer"])
                    current_step = step
                assert optimizer is not None
                metrics = trainer.train_epoch(epoch, step, optimizer, preprocess, progress)
                val = trainer.validate(step, preprocess, progress)
                history.append({"epoch": epoch, "step": step, **metrics, **val})
                state = {
                    "identity": identity,
                    "identity_digest": identity_digest,
                    "step": step,
                    "history": history,
                    "wall_s": wall_before + time.perf_counter() - t_start,
                    "resumes": resumes,
                    "complete": False,
                }
                ckpt.save_checkpoint(out, epoch, model, optimizer, state)
                if exit_after and epoch == exit_after:
                    os._exit(75)  # test hook: die like a killed process, mid-run
        wall = wall_before + time.perf_counter() - t_start
        card = _finish(
            out,
            recipe,
            run,
            data,
            backbone,
            model,
            history,
            identity,
            device,
            trainer.feature_pass,
            wall,
            resumes,
        )
        final_epoch = recipe.total_epochs
        done = {
            "identity": identity,
            "identity_digest": identity_digest,
            "epoch": final_epoch,
            "history": history,
            "wall_s": wall,
            "resumes": resumes,
            "complete": True,
            "tensors": None,
        }
        ckpt.atomic_write_text(out / ckpt.CHECKPOINT_JSON, _json(done))
        for old in out.glob("checkpoint-e*.safetensors"):
            old.unlink()  # the final weights are in weights.safetensors
    return FinetuneResult(out, card, start - 1)


def _known_bad(out: Path, info: dict[str, Any] | None) -> dict[str, str] | None:
    """A resumed run reuses its decode scan (checked against the data digest by the caller)."""
    scan = out / SCAN_FILE
    if info is None or not scan.is_file():
        return None
    import json

    try:
        record = json.loads(scan.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    data_digest = info.get("identity", {}).get("data_digest")
    if record.get("data_digest") != data_digest:
        return None
    unreadable = record.get("unreadable")
    return unreadable if isinstance(unreadable, dict) else None


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1, default=str)


def _read_existing_card(out: Path) -> dict[str, Any]:
    from histobench.extractors.ftx.card import read_card

    try:
        return read_card(out)
    except Exception:
        return {}


def _step_summary(history: list[dict[str, Any]], step: int) -> dict[str, float]:
    rows = [h for h in history if h["step"] == step]
    seconds = sum(h["seconds"] for h in rows)
    images = sum(h["images_per_s"] * h["seconds"] for h in rows)
    return {
        "epochs": len(rows),
        "seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else 0.0,
    }


def _finish(
    out: Path,
    recipe: FinetuneRecipe,
    run: RunOptions,
    data: TrainingData,
    backbone: Backbone,
    model: FTXModel,
    history: list[dict[str, Any]],
    identity: dict[str, Any],
    device: torch.device,
    feature_pass: dict[str, float],
    wall: float,
    resumes: int,
) -> dict[str, Any]:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out / f".{WEIGHTS}.tmp"
    from safetensors.torch import save_file

    # One metadata key only: safetensors writes metadata in hash-map order, so several keys
    # would make identical weights hash differently from one process to the next.
    save_file(state, str(tmp), {"format": "histobench-ftx"})
    tmp.replace(out / WEIGHTS)
    weights_digest = file_digest(out / WEIGHTS)
    last = history[-1] if history else {}
    card = {
        "recipe": recipe.model_dump(mode="json"),
        "identity_digest": digest(identity, length=32),
        "classes": data.classes,
        "backbone": {
            "name": recipe.backbone,
            "timm_model": timm_name(recipe.backbone),
            "feature_dim": backbone.feature_dim,
            "weights_source": backbone.weights_source,
            "weights_digest": backbone.weights_digest,
        },
        "head": {
            "layers": ["fc1", "relu", "fc2", "relu", "classifier"],
            "hidden_dim": recipe.hidden_dim,
            "n_classes": len(data.classes),
            "features": "activations after the second ReLU (the classifier's input)",
        },
        "preprocessing": backbone.preprocessing.describe(),
        "weights_file": WEIGHTS,
        "weights_digest": weights_digest,
        "data": {
            "path": str(run.data),
            "digest": data.digest,
            "n_tiles": len(data.items),
            "n_train": len(data.train),
            "n_val": len(data.val),
            "split_grouped_by_patient": data.grouped,
            "class_counts": {c: int((data.labels == k).sum()) for k, c in enumerate(data.classes)},
            "skipped": [{"item": s.item_id, "reason": s.reason} for s in data.skipped],
        },
        "history": history,
        "final": {k: last.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
        "throughput": {
            "step1": {
                **_step_summary(history, 1),
                "mode": "cached-features"
                if recipe.step1_cache_features and recipe.augment == "none"
                else "images",
                "feature_pass": feature_pass or None,
            },
            "step2": _step_summary(history, 2),
        },
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": "bfloat16-autocast" if device.type == "cuda" else "float32",
        "deterministic": device.type == "cpu",
        "wall_time_s": wall,
        "resumes": resumes,
        "versions": versions(),
    }
    write_card(out, card)
    plot_curves(out, history, recipe.step1_epochs)
    return card
