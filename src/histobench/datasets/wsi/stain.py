"""Macenko stain normalisation (torchstain's algorithm), with failures reported, never raised.

A tile with too little stained tissue (glass, fat, pen marks) has no stain vectors to
estimate; torchstain then raises or returns garbage. Such tiles are handled by a recorded
policy: dropped ("skip") or passed through unnormalised ("keep").

Tiles are normalised in batches by ``histobench.datasets.wsi.macenko`` (torchstain's steps
compiled with numba, ~2.5× cheaper, equal up to float rounding); torchstain itself fits a
custom reference tile, once per run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torchstain
from PIL import Image

from histobench.datasets.wsi.stain_config import StainConfig
from histobench.plugins.errors import DataError


class StainResult(NamedTuple):
    """``(image, ok, reason)``: the normalised tile, or the input tile and why it failed."""

    image: Image.Image
    ok: bool
    reason: str | None = None


def _rgb_array(image: Image.Image) -> np.ndarray:
    # np.array copies (torch.from_numpy needs a writable array); convert only if needed.
    return np.array(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1)


class StainNormalizer:
    """Normalises RGB tiles to a reference H&E appearance (Macenko 2009)."""

    def __init__(self, config: StainConfig | None = None) -> None:
        self.config = config or StainConfig()
        # torchstain exposes ``normalizers`` as an attribute, not an importable submodule.
        self._normalizer = torchstain.normalizers.MacenkoNormalizer(backend="torch")
        # Largest uint8 intensity whose optical density (torchstain's formula) is ≥ beta.
        od_table = -np.log((np.arange(256, dtype=np.float64) + 1) / self.config.io)
        dark_enough = np.nonzero(od_table >= self.config.beta)[0]
        self._cutoff = int(dark_enough[-1]) if len(dark_enough) else -1
        if self.config.enabled and self.config.reference is not None:
            self._fit_reference(self.config.reference)

    def _fit_reference(self, path: Path) -> None:
        try:
            with Image.open(path) as reference:
                array = _rgb_array(reference)
        except OSError as exc:
            raise DataError(f"{path}: cannot read the stain reference image: {exc}") from exc
        reason = self._precheck(array)
        if reason is None:
            try:
                self._normalizer.fit(
                    _chw(array), Io=self.config.io, alpha=self.config.alpha, beta=self.config.beta
                )
            except (RuntimeError, ValueError, IndexError) as exc:
                reason = f"stain estimate failed: {exc}"
        if reason is None and not self._reference_is_finite():
            reason = "stain estimate is not finite"
        if reason is not None:
            raise DataError(f"{path}: unusable stain reference: {reason}")

    def _reference_is_finite(self) -> bool:
        return bool(
            torch.isfinite(self._normalizer.HERef).all()
            and torch.isfinite(self._normalizer.maxCRef).all()
            and (self._normalizer.maxCRef > 0).all()
        )

    def _precheck(self, array: np.ndarray) -> str | None:
        """Why an HWC uint8 tile cannot give a stain estimate, or None if it can.

        Same stained-pixel rule as torchstain's (every channel's optical density ≥ beta),
        checked first so a blank tile fails with a reason, not an eigen-decomposition error.
        OD falls as intensity rises, so "OD ≥ beta" is "intensity ≤ a cutoff": an integer
        comparison instead of a logarithm per pixel.
        """
        if self._cutoff < 0:
            return "too little stained tissue (0.0% of pixels)"
        cutoff = self._cutoff
        # Three whole-plane comparisons beat a reduction along a length-3 axis.
        stained = (array[..., 0] <= cutoff) & (array[..., 1] <= cutoff) & (array[..., 2] <= cutoff)
        count = int(np.count_nonzero(stained))
        fraction = count / max(stained.size, 1)
        if count < 3 or fraction < self.config.min_stained_fraction:
            return f"too little stained tissue ({fraction:.1%} of pixels)"
        # A flat colour has no stain plane to find: torchstain then returns an arbitrary
        # recolouring instead of failing, so refuse it here.
        # Checked on every 4th row and column: flatness does not need every pixel, and the
        # full-size reduction would cost a tenth of the normalisation itself.
        sample = array[::4, ::4][stained[::4, ::4]].astype(np.int16)
        if len(sample) and int((sample.max(axis=0) - sample.min(axis=0)).max()) <= 1:
            return "no colour variation to estimate stains from"
        return None

    def normalize(self, image: Image.Image) -> StainResult:
        """(image, ok, reason); on failure the image is the input, and ``ok`` is False."""
        if not self.config.enabled:
            return StainResult(image.convert("RGB"), True, None)
        out, reasons = self.normalize_array(_rgb_array(image)[None])
        if reasons[0] is not None:
            return StainResult(image, False, reasons[0])
        return StainResult(Image.fromarray(out[0], mode="RGB"), True, None)

    def normalize_array(self, tiles: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """(B,H,W,3) uint8 tiles → (tiles, per-tile failure reason or None).

        Normalised tiles are written in place of the input's copy; a failed tile is left as
        it was read. All tiles that pass the precheck go through one batched kernel call.
        """
        out = np.array(tiles, dtype=np.uint8, copy=True)
        if not self.config.enabled:
            return out, [None] * len(out)
        reasons: list[str | None] = [self._precheck(tile) for tile in out]
        todo = [i for i, reason in enumerate(reasons) if reason is None]
        if not todo:
            return out, reasons
        try:
            normed, ok = self._kernel(out[todo])
        except np.linalg.LinAlgError:
            # One tile's eigen-decomposition failed: redo them one by one to find it.
            for i in todo:
                try:
                    single, single_ok = self._kernel(out[i : i + 1])
                except np.linalg.LinAlgError as exc:
                    reasons[i] = f"stain estimate failed: {exc}"
                    continue
                if single_ok[0]:
                    out[i] = single[0]
                else:
                    reasons[i] = "stain estimate is not finite"
            return out, reasons
        for j, i in enumerate(todo):
            if ok[j]:
                out[i] = normed[j]
            else:
                reasons[i] = "stain estimate is not finite"
        return out, reasons

    def _kernel(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.config.backend == "torchstain":
            return self._torchstain_tiles(tiles)
        from histobench.datasets.wsi.macenko import macenko_batch

        return macenko_batch(
            tiles,
            self._normalizer.HERef.detach().cpu().numpy(),
            self._normalizer.maxCRef.detach().cpu().numpy(),
            io=self.config.io,
            alpha=self.config.alpha,
            beta=self.config.beta,
        )

    def _torchstain_tiles(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """torchstain's own ``normalize`` per tile (the reference the numba kernel follows)."""
        out = np.empty_like(tiles)
        ok = np.ones(len(tiles), dtype=bool)
        for i, tile in enumerate(tiles):
            try:
                normed, _, _ = self._normalizer.normalize(
                    I=_chw(np.array(tile)),
                    Io=self.config.io,
                    alpha=self.config.alpha,
                    beta=self.config.beta,
                    stains=False,
                )
            except (RuntimeError, ValueError, torch.linalg.LinAlgError) as exc:
                raise np.linalg.LinAlgError(str(exc)) from exc
            arr = normed.numpy()
            ok[i] = bool(np.isfinite(arr).all())
            out[i] = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
        return out, ok

    def __call__(self, image: Image.Image) -> Image.Image | None:
        """The tile to use downstream under the failure policy; None means drop it."""
        result = self.normalize(image)
        if result.ok or self.config.on_failure == "keep":
            return result.image
        return None

    def identity(self) -> dict[str, Any]:
        """What determines the normalised pixels, for feature-cache keys."""
        if not self.config.enabled:
            return {"enabled": False}
        he = self._normalizer.HERef.detach().cpu().numpy().astype(np.float64)
        max_c = self._normalizer.maxCRef.detach().cpu().numpy().astype(np.float64)
        reference = hashlib.sha256(np.round(np.concatenate([he.ravel(), max_c]), 6).tobytes())
        return {
            "enabled": True,
            "method": "macenko",
            # torchstain's algorithm either way (macenko.py); rounding may differ by 1.
            "backend": "histobench-numba" if self.config.backend == "numba" else "torchstain",
            "reference": "torchstain-default" if self.config.reference is None else "fitted",
            "reference_digest": reference.hexdigest()[:16],
            "io": self.config.io,
            "alpha": self.config.alpha,
            "beta": self.config.beta,
            "min_stained_fraction": self.config.min_stained_fraction,
            "on_failure": self.config.on_failure,
        }
