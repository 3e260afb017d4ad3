"""Part A (backbone up to global average pooling) + Part B (the add-on head).

Part B = Linear(D→H) → ReLU → Linear(H→H) → ReLU → classifier Linear(H→C). The FTX features
are the activations after the second ReLU, i.e. the classifier's input.
"""

from __future__ import annotations

import torch
from torch import nn

BACKBONE_PREFIX = "backbone."
HEAD_PREFIX = "head."


class FTXHead(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int, n_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def hidden(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc2(torch.relu(self.fc1(pooled))))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.hidden(pooled))


class FTXModel(nn.Module):
    """Part A + Part B; ``forward`` gives logits, ``features`` the FTX features."""

    def __init__(self, backbone: nn.Module, head: FTXHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images).flatten(1))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.head.hidden(self.backbone(images).flatten(1))


class FTXFeatures(nn.Module):
    """The extractor's module: image → the 2048 activations of Part B's last hidden layer."""

    def __init__(self, model: FTXModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images)


def make_head(in_dim: int, hidden_dim: int, n_classes: int, seed: int) -> FTXHead:
    """A seeded head init that leaves the global RNG untouched (so runs are reproducible)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FTXHead(in_dim, hidden_dim, n_classes)


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Split an FTXModel state dict into (Part A, Part B) tensors, prefixes removed."""
    part_a = {
        k[len(BACKBONE_PREFIX) :]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)
    }
    part_b = {k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    return part_a, part_b
