"""Every ``bench`` command builds its parser from the registered plugins: that must not import
torch, timm or TensorFlow (seconds on a cold start, paid by ``bench run`` on precomputed
features, ``bench compare``, ``bench list``)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "timm", "torchvision", "tensorflow", "torchstain")


def test_building_the_parser_imports_no_deep_learning_framework() -> None:
    code = (
        "import json, sys\n"
        "from histobench.cli.main import build_parser\n"
        "parser = build_parser()\n"
        "parser.parse_args(['list', 'extractors'])\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_parser_still_lists_every_foundation_model_and_ftx() -> None:
    from histobench.cli.main import build_parser
    from histobench.plugins.manager import get_plugins

    assert "run" in build_parser().format_help()
    names = set(get_plugins().extractors.names())
    assert {"ftx", "uni", "hibou-l", "ctranspath", "effnet-lite0"} <= names
