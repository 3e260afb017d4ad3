"""The FTX trainer: batches in the seeded order, the two steps' frozen parts, validation.

Step 1 trains Part B (the head) on a frozen, eval-mode Part A; with no augmentation Part A's
pooled features never change, so they are computed once and reused every epoch. Step 2
fine-tunes Part A under a frozen Part B. The data order of an epoch depends only on (seed,
epoch), so a resumed epoch sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from histobench.benchmark.progress import rate_text
from histobench.extractors.ftx.data import TileImages, TrainingData, make_loader
from histobench.extractors.ftx.model import FTXModel
from histobench.extractors.ftx.recipe import FinetuneRecipe
from histobench.extractors.ftx.runtime import autocast
from histobench.plugins.errors import DataError


class Trainer:
    """One epoch of step 1 or step 2 at a time, and validation; the run loop owns the rest."""

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
                with autocast(self.device):
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
                with torch.no_grad(), autocast(self.device):
                    inputs = self.model.backbone(inputs).flatten(1)
                inputs = inputs.float()
            elif step == 2 and r.augment == "flips":
                inputs = self._flip(inputs, gen)
            with autocast(self.device):
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
            with autocast(self.device):
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


def step_of(epoch: int, recipe: FinetuneRecipe) -> int:
    return 1 if epoch <= recipe.step1_epochs else 2
