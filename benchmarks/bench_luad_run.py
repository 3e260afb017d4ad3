"""``bench run --task luad-mutation`` end to end on a bring-your-own-features cohort.

    python benchmarks/bench_luad_run.py [--repeats 50] [--labels planted|null|both] [--profile]

Builds a cohort the way a user brings their own features: one HDF5 file per patient
(``features`` tiles x 2,048, ``coords``), a GDC-style MAF with 9 genes and a cohort.toml, at the
study's size (344 patients). Then times ``bench run --task luad-mutation --dataset cohort.toml
--repeats R --folds 5`` in a fresh process (a fresh HISTOBENCH_HOME: nothing cached), for
labels with planted signal and for labels independent of the features. With ``--profile``
the run is profiled (cProfile) and the time inside the LASSO engine
(``lasso_cross_val_predict_many``) is split from the rest (feature loading, alignment, scoring,
store writes) in the same run. Prints a Markdown section with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from histobench.benchmark.h5io import write_slide_features

GENES = ["STK11", "TP53", "LRP1B", "NF1", "FAT1", "FAT4", "KEAP1", "EGFR", "KRAS"]
PREVALENCE = [0.17, 0.46, 0.33, 0.11, 0.14, 0.13, 0.17, 0.14, 0.30]


def build_cohort(root: Path, labels: str, patients: int, dim: int, tiles: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    ids = [f"TCGA-{10 + i // 100:02d}-{i:04d}" for i in range(patients)]
    status = rng.random((patients, len(GENES))) < np.array(PREVALENCE)
    base = rng.normal(size=(patients, dim)).astype(np.float32)
    if labels == "planted":  # each gene shifts two features of its mutated patients
        for g in range(len(GENES)):
            base[:, 2 * g : 2 * g + 2] += 0.8 * status[:, g : g + 1]
    feats = root / "features"
    for i, pid in enumerate(ids):
        rows = base[i] + rng.normal(0, 1.0, size=(tiles, dim)).astype(np.float32)
        write_slide_features(feats / f"{pid}.h5", rows, np.zeros((tiles, 2)))
    lines = ["Hugo_Symbol\tVariant_Classification\tTumor_Sample_Barcode"]
    for i, pid in enumerate(ids):
        lines.append(f"TTN\tSilent\t{pid}-01A-11D-A000-08")  # every patient was sequenced
        for g, gene in enumerate(GENES):
            if status[i, g]:
                lines.append(f"{gene}\tMissense_Mutation\t{pid}-01A-11D-A000-08")
    (root / "mutations.maf").write_text("\n".join(lines) + "\n")
    toml = root / "cohort.toml"
    toml.write_text(
        f'[cohort]\nname = "bench-{labels}"\nfeatures = "features"\n'
        f'mutations = "mutations.maf"\ngenes = {GENES!r}\n'.replace("'", '"')
    )
    return toml


def timed_run(toml: Path, home: Path, repeats: int, profile: Path | None) -> tuple[float, str]:
    env = {**os.environ, "HISTOBENCH_HOME": str(home), "HISTOBENCH_QUIET": "1"}
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += ["-m", "histobench.cli.main", "run", "--task", "luad-mutation", "--dataset",
            str(toml), "--repeats", str(repeats), "--folds", "5", "--json"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds, done.stdout


def engine_seconds(profile: Path) -> tuple[float, list[str]]:
    stats = pstats.Stats(str(profile))
    engine = 0.0
    top: list[tuple[float, str]] = []
    for (file, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name in ("lasso_cross_val_predict", "lasso_cross_val_predict_many"):
            engine = max(engine, cumulative)
        if "histobench" in file and "estimators" not in file:
            top.append((cumulative, f"{Path(file).name}:{name}"))
    top.sort(reverse=True)
    return engine, [f"{s:.1f} s {n}" for s, n in top[:12]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--patients", type=int, default=344)
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument("--tiles", type=int, default=16, help="tiles per patient file")
    parser.add_argument("--labels", choices=["planted", "null", "both"], default="both")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rows = []
    for labels in ["planted", "null"] if args.labels == "both" else [args.labels]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            toml = build_cohort(root, labels, args.patients, args.features, args.tiles, 0)
            profile = root / "run.prof" if args.profile else None
            load = os.getloadavg()[0]
            seconds, _ = timed_run(toml, root / "home", args.repeats, profile)
            row = f"| {labels} | {seconds:.1f} s |"
            if profile is not None:
                engine, top = engine_seconds(profile)
                row += f" {engine:.1f} s | {seconds - engine:.1f} s |"
                print(
                    f"\n{labels}: cumulative time of histobench functions:\n  " + "\n  ".join(top)
                )
            rows.append(row + f" {load:.1f} |")
    print(f"\n`bench run --task luad-mutation`, {args.patients} patients × {args.features} "
          f"features ({args.tiles} tiles per patient file), {len(GENES)} genes, "
          f"{args.repeats} × 5, {os.cpu_count()} CPUs\n")  # fmt: skip
    head = "| labels | end to end |" + (
        " in the LASSO engine | outside it |" if args.profile else ""
    )
    print(head + " load (1 min) at start |")
    print("|" + "---|" * (head.count("|") - 1 + 1))
    print("\n".join(rows))
    print(os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
