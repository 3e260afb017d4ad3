"""Built-in extractors: real embedded weights, safe loading, clear errors without weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from histobench.extractors.backbones import (
    build_backbone,
    effnet_lite0_state_dict,
    effnet_lite0_weights_file,
)
from histobench.extractors.builtin import SPECS
from histobench.plugins.errors import WeightsError
from histobench.plugins.specs import Runtime

SPEC = {s.name: s for s in SPECS}


def test_embedded_effnet_lite0_classifies_the_cat_photo() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(effnet_lite0_state_dict(effnet_lite0_weights_file()))
    model.eval()
    cat = Image.fromarray(skimage_data.chelsea()).resize((224, 224), Image.Resampling.BICUBIC)
    x = (torch.from_numpy(np.asarray(cat, np.float32) / 255.0).permute(2, 0, 1) - 0.5) / 0.5
    with torch.inference_mode():
        logits = model(x[None])
    assert int(logits.argmax()) == 285  # ImageNet "Egyptian cat"


def test_effnet_extractor_gives_1280_pooled_features() -> None:
    spec = SPEC["effnet-lite0"]
    extractor = spec.factory(spec.options_model(input_size=64), Runtime("cpu"))
    tiles = torch.stack(
        [extractor.preprocess(Image.new("RGB", (64, 64), c)) for c in ("white", "purple")]
    )
    feats = extractor.embed(tiles)
    assert feats.shape == (2, 1280)
    assert not torch.allclose(feats[0], feats[1])
    ident = extractor.identity()
    assert len(ident["weights_digest"]) == 64 and ident["preprocessing"]["mean"] == (0.5, 0.5, 0.5)


def test_imgnet_without_weights_says_how_to_get_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    spec = SPEC["imgnet"]
    with pytest.raises(WeightsError, match="--weights PATH"):
        spec.factory(spec.options_model(), Runtime("cpu"))


def _random_xception_weights(path: Path) -> dict[str, torch.Tensor]:
    # Xception ImageNet weights cannot be obtained on this machine: random weights stand in.
    torch.manual_seed(0)
    state = timm.create_model("legacy_xception", pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return state


def test_imgnet_loads_a_safetensors_file_and_gives_2048_features(tmp_path: Path) -> None:
    state = _random_xception_weights(tmp_path / "xception.safetensors")
    spec = SPEC["imgnet"]
    extractor = spec.factory(
        spec.options_model(weights=tmp_path / "xception.safetensors", input_size=96), Runtime("cpu")
    )
    assert extractor.feature_dim == 2048
    backbone = build_backbone("xception", weights=tmp_path / "xception.safetensors")
    assert torch.equal(backbone.model.state_dict()["conv1.weight"], state["conv1.weight"])
    # The extractor folds batch norm into the convolutions: same features to rounding.
    assert extractor.identity()["batchnorm_folded"] > 0
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        unfused = backbone.model.eval()(x)
    assert torch.allclose(extractor.embed(x), unfused, atol=1e-3 * float(unfused.abs().max()))
    feats = extractor.embed(torch.zeros(1, 3, 96, 96))
    assert feats.shape == (1, 2048)


def test_imgnet_finds_weights_in_the_torch_hub_cache(tmp_path: Path, monkeypatch) -> None:
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(1)
    torch.save(timm.create_model("legacy_xception").state_dict(), hub / "xception-43020ad28.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    backbone = build_backbone("xception", weights_dir=tmp_path / "nothing-here")
    assert backbone.weights_source.endswith("xception-43020ad28.pth")


def test_pickled_code_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("executed!",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(WeightsError, match="cannot read weights"):
        build_backbone("xception", weights=evil)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="junk.safetensors"):
        build_backbone("xception", weights=junk)


def test_wrong_architecture_weights_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet.safetensors"
    save_file(timm.create_model("resnet18").state_dict(), str(path))
    with pytest.raises(WeightsError, match="do not fit the architecture"):
        build_backbone("xception", weights=path)


def test_timm_prefix_extractor_with_local_weights(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.safetensors"
    save_file(timm.create_model("resnet18").state_dict(), str(path))
    spec = SPEC["timm"]
    extractor = spec.factory(
        spec.options_model(model_name="resnet18", weights=path, input_size=64), Runtime("cpu")
    )
    assert extractor.name == "timm:resnet18" and extractor.feature_dim == 512
    with pytest.raises(WeightsError, match="no weights found for 'timm:resnet18'"):
        spec.factory(spec.options_model(model_name="resnet18"), Runtime("cpu"))


def test_random_init_is_seeded_and_labelled() -> None:
    spec = SPEC["random-init"]
    a = spec.factory(spec.options_model(input_size=64), Runtime("cpu", seed=1))
    b = spec.factory(spec.options_model(input_size=64), Runtime("cpu", seed=1))
    c = spec.factory(spec.options_model(input_size=64), Runtime("cpu", seed=2))
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(a.embed(x), b.embed(x))
    assert not torch.equal(a.embed(x), c.embed(x))
    assert a.identity()["weights_digest"] != c.identity()["weights_digest"]


def test_batchnorm_folding_keeps_outputs_and_refuses_wrong_pairs() -> None:
    from torch import nn

    from histobench.plugins.fusion import fold_batchnorm

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=0)
    for m in model.modules():  # non-trivial statistics, as trained weights have
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    probe = torch.randn(2, 3, 64, 64)
    folded, count = fold_batchnorm(model, probe)
    assert count == 49
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(folded(x), model(x), atol=1e-4, rtol=1e-4)

    class Crossed(nn.Module):  # adjacent conv and norm that are not applied in sequence
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)
            self.bn.running_mean.fill_(2.0)
            self.bn.weight.data.fill_(3.0)

        def forward(self, x):
            return self.conv(x) + self.bn(x)

    crossed = Crossed()
    same, count = fold_batchnorm(crossed, probe)
    assert count == 0 and same is crossed
