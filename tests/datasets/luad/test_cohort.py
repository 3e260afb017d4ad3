"""The cohort TOML plugin: validation, detection, precomputed features as items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from histobench.benchmark.h5io import write_slide_features
from histobench.datasets.cohort import load_cohort, looks_like_cohort
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.specs import Runtime
from tests.conftest import assert_one_line_error
from tests.datasets.luad.helpers import planted_cohort


def test_feature_cohort_items_patients_and_tile_counts(tmp_path: Path) -> None:
    info = planted_cohort(tmp_path, n_patients=6, dim=4, slides_per_patient=2)
    ds = load_cohort(str(info["toml"]))
    assert ds.name == "planted" and ds.kind == "cohort"
    assert ds.precomputed_label == "mymodel"  # the features folder's name
    assert len(ds.items) == 12
    assert {it.patient for it in ds.items} == set(info["patients"])  # slide → patient barcode
    result = ds.embed(None, ds.items, Runtime())
    assert result.ok == list(range(12))
    # Slide DX1 has 6 rows, DX2 has 7: counts weight the patient mean over all its tiles.
    assert sorted(set(result.tile_counts.tolist())) == [6.0, 7.0]
    first = ds.items[0].path
    import h5py

    with h5py.File(first) as h5:
        np.testing.assert_allclose(result.features[0], h5["features"][()].mean(axis=0), rtol=1e-6)


def test_unreadable_feature_file_is_skipped_not_fatal(tmp_path: Path) -> None:
    info = planted_cohort(tmp_path, n_patients=4, dim=3)
    bad = tmp_path / "features" / "mymodel" / "TCGA-T0-9999.h5"
    bad.write_bytes(b"not hdf5")
    ds = load_cohort(str(info["toml"]))
    result = ds.embed(None, ds.items, Runtime())
    assert len(result.ok) == 4
    assert [s.item_id for s in result.skipped] == ["TCGA-T0-9999"]
    assert "corrupt or truncated" in result.skipped[0].reason


def test_feature_dimension_mismatch_names_the_file(tmp_path: Path) -> None:
    info = planted_cohort(tmp_path, n_patients=3, dim=3)
    odd = tmp_path / "features" / "mymodel" / "TCGA-T0-9998.h5"
    write_slide_features(odd, np.ones((2, 5)), np.zeros((2, 2)))
    ds = load_cohort(str(info["toml"]))
    with pytest.raises(DataError, match="TCGA-T0-9998.h5: 5 features per row"):
        ds.embed(None, ds.items, Runtime())


def test_misspelt_key_names_file_and_field(tmp_path: Path) -> None:
    info = planted_cohort(tmp_path, n_patients=3, dim=2)
    toml: Path = info["toml"]  # type: ignore[assignment]
    toml.write_text(toml.read_text().replace("mutations =", "mutation ="))
    with pytest.raises(ConfigError) as exc:
        load_cohort(str(toml))
    message = str(exc.value)
    assert str(toml) in message and "cohort.mutation: unknown key" in message


def test_validation_rules(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    path = tmp_path / "c.toml"
    path.write_text('[cohort]\nfeatures = "features"\n')
    with pytest.raises(ConfigError, match="give 'mutations' and/or 'expression'"):
        load_cohort(str(path))
    path.write_text('[cohort]\nfeatures = "features"\nslides = "features"\nmutations = "m.maf"\n')
    with pytest.raises(ConfigError, match="exactly one of 'slides' and 'features'"):
        load_cohort(str(path))
    path.write_text('[cohort]\nfeatures = "features"\nmutations = "m.maf"\n')
    with pytest.raises(DataError, match=r"c\.toml: cohort.mutations: .*m\.maf not found"):
        load_cohort(str(path))


def test_detect(tmp_path: Path) -> None:
    good = tmp_path / "a.toml"
    good.write_text('[cohort]\nname = "x"\n')
    other = tmp_path / "b.toml"
    other.write_text('task = "crc-tissue"\n')
    broken = tmp_path / "c.toml"
    broken.write_text("[cohort\n")
    assert looks_like_cohort(good)
    assert not looks_like_cohort(other) and not looks_like_cohort(broken)
    assert not looks_like_cohort(tmp_path)


def test_cli_misspelt_key_is_one_line(tmp_path: Path, cli, luad_plugins) -> None:  # type: ignore[no-untyped-def]
    info = planted_cohort(tmp_path, n_patients=3, dim=2)
    toml: Path = info["toml"]  # type: ignore[assignment]
    toml.write_text(toml.read_text().replace("genes =", "gens ="))
    code, out, err = cli("run", "--task", "luad-mutation", "--dataset", toml)
    assert code != 0 and out == ""
    assert_one_line_error(err, str(toml), "cohort.gens")


def test_slide_cohort_tiling_and_stain_are_validated(tmp_path: Path) -> None:
    (tmp_path / "slides").mkdir()
    (tmp_path / "slides" / "TCGA-05-4244-01Z-00-DX1.svs").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("patient,KRAS\nTCGA-05-4244,1\n")
    path = tmp_path / "c.toml"
    head = '[cohort]\nslides = "slides"\nmutations = "m.csv"\n'
    path.write_text(head + "[cohort.tiling]\ntile_pix = 224\n")
    with pytest.raises(ConfigError, match=r"c\.toml: cohort\.tiling\.tile_pix: unknown key"):
        load_cohort(str(path))
    path.write_text(head + '[cohort.stain]\non_failure = "ignore"\n')
    with pytest.raises(ConfigError, match=r"cohort\.stain\.on_failure"):
        load_cohort(str(path))
    path.write_text(head + "[cohort.tiling]\ntarget_mpp = 1.0\n")
    ds = load_cohort(str(path))
    assert ds.precomputed_label is None and ds.embed.keywords["tiling"].target_mpp == 1.0
    assert [it.patient for it in ds.items] == ["TCGA-05-4244"]
