"""TCGA-LUAD from the NCI Genomic Data Commons: slides, masked somatic MAFs, STAR-counts.

Files are found with ``POST {GDC}/files`` (a ``filters`` JSON of ``op``/``content`` clauses;
``fields`` file_id, file_name, md5sum, file_size, cases.submitter_id, cases.samples.*) or read
from a GDC manifest (``id filename md5 size state``, tab-separated), and downloaded from
``{GDC}/data/{file_id}``. Everything lands under one cohort folder:

    <root>/slides/…svs          <root>/slides.csv        (path, slide_id, patient, file_id)
    <root>/mutations/…maf.gz    <root>/expression/…tsv + gdc_sample_sheet.tsv
    <root>/luad.toml            (written once slides and at least one label set are complete)
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

from histobench.datasets.fetch.download import (
    Downloader,
    RemoteFile,
    bytes_to_fetch,
    ensure_free_space,
    free_bytes,
    make_download_progress,
    summarize,
)
from histobench.datasets.fetch.http import HttpClient, format_bytes, gdc_url
from histobench.datasets.fetch.luad_cohort import write_cohort_file
from histobench.datasets.fetch.records import FetchRecord, read_record
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.labels import patient_from_barcode

PROJECT = "TCGA-LUAD"
FIELDS = (
    "file_id,file_name,md5sum,file_size,experimental_strategy,"
    "cases.submitter_id,cases.samples.submitter_id,cases.samples.sample_type"
)
PAGE_SIZE = 1000
MAX_PAGES = 50  # TCGA-LUAD has a few thousand files per kind; a bound, not a limit in practice
SlideKind = Literal["frozen", "ffpe"]
# GDC's experimental strategies for the two kinds of TCGA slide.
SLIDE_STRATEGY: dict[str, str] = {"frozen": "Tissue Slide", "ffpe": "Diagnostic Slide"}


@dataclass(frozen=True)
class GdcFile:
    file_id: str
    file_name: str
    md5: str
    size: int
    patient: str | None
    samples: tuple[str, ...] = ()
    sample_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class GdcSet:
    name: str
    folder: str  # under the cohort root
    what: str
    clauses: tuple[tuple[str, str], ...]  # (field, value) pairs, all required


GDC_SETS = {
    s.name: s
    for s in (
        GdcSet("tcga-luad-slides", "slides", "slide images", (("data_type", "Slide Image"),)),
        GdcSet(
            "tcga-luad-mutations",
            "mutations",
            "open-access masked somatic MAFs",
            (
                ("data_category", "Simple Nucleotide Variation"),
                ("data_type", "Masked Somatic Mutation"),
            ),
        ),
        GdcSet(
            "tcga-luad-expression",
            "expression",
            "STAR-counts gene expression files",
            (
                ("data_category", "Transcriptome Profiling"),
                ("data_type", "Gene Expression Quantification"),
                ("analysis.workflow_type", "STAR - Counts"),
            ),
        ),
    )
}


def gdc_filters(spec: GdcSet, kind: SlideKind | None) -> dict[str, Any]:
    clauses = [("cases.project.project_id", PROJECT), ("access", "open"), *spec.clauses]
    if kind is not None:
        clauses.append(("experimental_strategy", SLIDE_STRATEGY[kind]))
    return {
        "op": "and",
        "content": [{"op": "in", "content": {"field": f, "value": [v]}} for f, v in clauses],
    }


def query_files(client: HttpClient, filters: dict[str, Any]) -> list[GdcFile]:
    """Every file matching ``filters``, page by page (bounded)."""
    url = f"{gdc_url()}/files"
    hits: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        payload = {"filters": filters, "fields": FIELDS, "format": "JSON",
                   "size": PAGE_SIZE, "from": len(hits)}  # fmt: skip
        answer = client.post_json(url, payload)
        try:
            block = list(answer["data"]["hits"])
            total = int(answer["data"]["pagination"]["total"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{url}: unexpected answer (no data.hits / pagination)") from exc
        hits.extend(block)
        if not block or len(hits) >= total:
            return [_parse_hit(url, hit) for hit in hits]
    raise DataError(f"{url}: more than {MAX_PAGES * PAGE_SIZE} files match; narrow the query")


def _parse_hit(url: str, hit: dict[str, Any]) -> GdcFile:
    try:
        cases = hit.get("cases") or []
        samples = [s for case in cases for s in (case.get("samples") or [])]
        patient = cases[0].get("submitter_id") if cases else None
        return GdcFile(
            file_id=str(hit["file_id"]),
            file_name=safe_file_name(str(hit["file_name"]), url),
            md5=str(hit["md5sum"]),
            size=int(hit["file_size"]),
            patient=patient or patient_from_barcode(str(hit["file_name"])),
            samples=tuple(str(s.get("submitter_id", "")) for s in samples),
            sample_types=tuple(str(s.get("sample_type", "")) for s in samples),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{url}: file entry without {exc} ({hit.get('file_id', '?')})") from exc


def safe_file_name(name: str, source: str) -> str:
    """A server-given name is untrusted: one plain path component only."""
    if not name or PurePath(name).name != name or name in (".", "..") or "\\" in name:
        raise DataError(f"{source}: refused unsafe file name {name!r}")
    return name


def read_gdc_manifest(path: Path) -> list[GdcFile]:
    """A GDC portal manifest: tab-separated ``id filename md5 size state`` with a header."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read GDC manifest: {exc}") from exc
    needed = ("id", "filename", "md5", "size")
    if not rows or any(c not in rows[0] for c in needed):
        raise ConfigError(f"{path}: not a GDC manifest (tab-separated columns {' '.join(needed)})")
    files = []
    for line, row in enumerate(rows, start=2):
        try:
            name = safe_file_name(row["filename"].strip(), f"{path}: line {line}")
            size = int(row["size"])
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: line {line}: bad size {row.get('size')!r}") from exc
        files.append(GdcFile(row["id"].strip(), name, row["md5"].strip(), size,
                             patient_from_barcode(name)))  # fmt: skip
    return files


@dataclass(frozen=True)
class GdcRequest:
    """One ``bench data fetch tcga-luad-*`` invocation."""

    spec: GdcSet
    root: Path
    kind: SlideKind | None = None  # slides only
    manifest: Path | None = None  # slides only
    max_files: int | None = None  # slides only (--max-slides)
    dry_run: bool = False


def select_files(client: HttpClient, request: GdcRequest) -> list[GdcFile]:
    if request.manifest is not None:
        files = read_gdc_manifest(request.manifest)
    else:
        files = query_files(client, gdc_filters(request.spec, request.kind))
    files = sorted(files, key=lambda f: f.file_name)
    if request.max_files is not None:
        files = files[: request.max_files]
    if not files:
        raise DataError(f"{request.spec.name}: the GDC lists no matching files")
    names = [f.file_name for f in files]
    if len(set(names)) != len(names):
        raise DataError(f"{request.spec.name}: two GDC files share a file name")
    return files


def fetch_gdc(request: GdcRequest, client: HttpClient, say: Callable[[str], None] = print) -> str:
    """Download and verify the selection, then write its manifest/sample sheet and luad.toml."""
    spec, root = request.spec, request.root
    files = select_files(client, request)
    folder = root / spec.folder
    remote = [
        RemoteFile(f"{gdc_url()}/data/{f.file_id}", folder / f.file_name, f.size, f.md5)
        for f in files
    ]
    missing = bytes_to_fetch(remote)
    if request.dry_run:
        total = sum(f.size for f in files)
        say(f"{spec.name}: {len(files)} {spec.what} from {gdc_url()}, {format_bytes(total)}")
        for f in files[:10]:
            say(f"  {f.file_name} ({format_bytes(f.size)}, md5 {f.md5})")
        if len(files) > 10:
            say(f"  … and {len(files) - 10} more")
        say(
            f"  {format_bytes(missing)} still to download into {folder} "
            f"({format_bytes(free_bytes(folder))} free)"
        )
        return f"{spec.name}: dry run, nothing downloaded"
    ensure_free_space(folder, missing, spec.name)
    downloader = Downloader(client, root / ".quarantine", make_download_progress())
    outcomes = downloader.fetch_all(remote, spec.name)
    if not all(o.ok for o in outcomes):
        raise DataError(summarize(outcomes, spec.name))
    source = {"gdc": gdc_url(), "project": PROJECT, "kind": request.kind,
              "manifest": str(request.manifest) if request.manifest else None}  # fmt: skip
    FetchRecord(
        spec.name,
        source,
        {f"{spec.folder}/{f.file_name}": {"size": f.size, "md5": f.md5} for f in files},
    ).write(root)
    if spec.folder == "slides":
        _write_slide_manifest(root / "slides.csv", files)
    if spec.folder == "expression":
        _write_sample_sheet(folder / "gdc_sample_sheet.tsv", files)
    cohort = _maybe_cohort(root)
    closing = f"{spec.name}: {len(files)} file(s) complete and verified in {folder}"
    return f"{closing}; {cohort}"


def _write_slide_manifest(path: Path, files: list[GdcFile]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "slide_id", "patient", "file_id", "md5", "size"])
        for f in files:
            slide_id = f.file_name.rsplit(".", 1)[0]
            writer.writerow([f"slides/{f.file_name}", slide_id, f.patient or "", f.file_id,
                             f.md5, f.size])  # fmt: skip
    tmp.replace(path)


def _write_sample_sheet(path: Path, files: list[GdcFile]) -> None:
    """The GDC portal's sample sheet columns: the expression reader maps files to samples."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t")
        writer.writerow(["File ID", "File Name", "Data Category", "Data Type", "Project ID",
                         "Case ID", "Sample ID", "Sample Type"])  # fmt: skip
        for f in files:
            writer.writerow([f.file_id, f.file_name, "Transcriptome Profiling",
                             "Gene Expression Quantification", PROJECT, f.patient or "",
                             ", ".join(f.samples), ", ".join(f.sample_types)])  # fmt: skip


def _maybe_cohort(root: Path) -> str:
    slides = (root / "slides.csv").is_file() and read_record(root, "tcga-luad-slides")
    mutations = read_record(root, "tcga-luad-mutations") is not None
    expression = read_record(root, "tcga-luad-expression") is not None
    if not slides or not (mutations or expression):
        return (
            "luad.toml is written once tcga-luad-slides and tcga-luad-mutations and/or "
            "tcga-luad-expression are complete"
        )
    path = write_cohort_file(
        root,
        slides="slides.csv",
        mutations="mutations" if mutations else None,
        expression="expression" if expression else None,
    )
    return f"cohort file {path}: bench run --task luad-mutation --dataset {path}"
