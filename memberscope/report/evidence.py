"""An evidence bundle: one archive a reviewer can file and check later, byte for byte.

:func:`write_evidence` packs a finished run into one zip archive:

=====================  ==========================================================================================
``results.json``       the run's results, as written (the source of truth)
``scores.csv``         per-record scores (when the run wrote them); ``roc.png`` the ROC figure
``report.html``        the full report, rendered now from ``results.json`` (with the frameworks section)
``summary.md``         the Markdown summary
``config.json``        the exact configuration the run used; ``seeds.json`` every seed it drew
``environment.json``   Python, platform, memberscope and library versions of the machine writing the bundle
``inputs.json``        SHA-256 of the model and data files the run used (as recorded at the run, and now)
``manifest.json``      every file above with its SHA-256 and size, and a summary of the run
=====================  ==========================================================================================

The SHA-256 of ``manifest.json`` itself is printed when the bundle is written; a reviewer who keeps that digest
can later run :func:`verify_bundle` (``memberscope verify BUNDLE --digest HEX``), which fails when any byte of a
listed file, of the manifest, or of the archive changed, or when a file was added or removed. Model and data files
are not copied into the bundle (they may be large or confidential): their digests are, so the same files can be
shown to be the ones audited.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError

__all__ = [
    "BUNDLE_FORMAT",
    "LIBRARIES",
    "MANIFEST",
    "Bundle",
    "Verification",
    "environment",
    "file_digest",
    "input_digests",
    "verify_bundle",
    "write_evidence",
]

BUNDLE_FORMAT = "memberscope-evidence/1"
MANIFEST = "manifest.json"
LIBRARIES = (
    "memberscope",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "torch",
    "matplotlib",
    "joblib",
    "opacus",
    "transformers",
    "lightning",
    "mlflow-skinny",
    "mlflow",
    "huggingface-hub",
    "pyarrow",
)
"""Distributions whose installed versions ``environment.json`` records (those not installed are left out)."""
_RUN_FILES = ("results.json", "scores.csv", "roc.png")
_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def environment() -> dict[str, Any]:
    """Python, platform and the installed versions of :data:`LIBRARIES`, as a JSON-ready dictionary."""
    from importlib import metadata

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "libraries": versions,
    }


def _entry(role: str, path: str | Path, recorded: str | None = None) -> dict[str, Any]:
    """One input file: its path, its digest now and the digest recorded at the run, and whether they agree."""
    path = Path(path)
    entry: dict[str, Any] = {"role": role, "path": str(path), "recorded_sha256": recorded}
    if path.is_file():
        entry.update(sha256=file_digest(path), bytes=path.stat().st_size)
        if recorded is None:
            entry["status"] = "digest taken now (not recorded at the run)"
        elif recorded == entry["sha256"]:
            entry["status"] = "matches the digest recorded at the run"
        else:
            entry["status"] = "CHANGED since the run: the digest differs from the one recorded at the run"
    else:
        entry.update(sha256=None, bytes=None)
        entry["status"] = "missing now" + ("; the digest recorded at the run is kept" if recorded else "")
    return entry


def input_digests(results: Any, include: list[str | Path] | tuple = ()) -> list[dict[str, Any]]:
    """The model and data files of a run, with SHA-256 digests: those ``audit-model`` recorded (its model, members,
    non-members and population files, with their digests at the run), the dataset's source file or folder when it
    is one, and the extra files ``include`` names."""
    out: list[dict[str, Any]] = []
    inputs = results.sections.get("inputs") or {}
    recorded = inputs.get("file_digests") or {}
    files = inputs.get("files") or {}
    for role, path in files.items():
        if path is not None:
            out.append(_entry(role, path, (recorded.get(role) or {}).get("sha256")))
    for role, info in recorded.items():  # files recorded with a digest but not under "files" (a model's sidecar)
        if role not in files and isinstance(info, dict) and info.get("path"):
            out.append(_entry(role, info["path"], info.get("sha256")))
    source = results.dataset.source
    if isinstance(source, str) and source and not files:
        path = Path(source)
        if path.is_file():
            out.append(_entry("dataset", path))
        elif path.is_dir():
            out += [_entry(f"dataset/{p.name}", p) for p in sorted(path.iterdir()) if p.is_file()]
    for extra in include:
        path = Path(extra)
        if not path.is_file():
            raise InvalidInputError(f"--include {str(path)!r} is not a file; expected a model or data file to digest")
        out.append(_entry("included", path))
    return out


@dataclass
class Bundle:
    """A written evidence bundle: its path, the SHA-256 of its manifest, and the input files' digests."""

    path: Path
    manifest_sha256: str
    files: list[dict[str, Any]]
    inputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed_inputs(self) -> list[dict[str, Any]]:
        """Input files whose digest now differs from the one recorded at the run (or that are gone)."""
        return [e for e in self.inputs if e["status"].startswith(("CHANGED", "missing"))]


def _json_bytes(value: Any) -> bytes:
    from memberscope.results.io import json_safe

    return (json.dumps(json_safe(value), indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def write_evidence(run_dir: str | Path, *, out: str | Path | None = None, include=()) -> Bundle:
    """Write the evidence bundle of the run in ``run_dir`` (default ``run_dir/evidence.zip``; see the module
    docstring for its contents).

    Raises
    ------
    InvalidInputError
        When ``run_dir`` holds no readable run, or an ``include`` path is not a file.
    """
    from memberscope.report.html import render_html
    from memberscope.report.markdown import render_markdown
    from memberscope.report.model import build_report, load_run

    run_dir = Path(run_dir)
    results, scores, defenses = load_run(run_dir, figures=False)
    model = build_report(results, scores=scores, defenses=defenses)
    members: dict[str, bytes] = {}
    for name in _RUN_FILES:
        if (run_dir / name).is_file():
            members[name] = (run_dir / name).read_bytes()
    if results.kind == "defend" and (run_dir / "frontier.png").is_file():
        members["frontier.png"] = (run_dir / "frontier.png").read_bytes()
    members["report.html"] = render_html(model).encode("utf-8")
    members["summary.md"] = render_markdown(model).encode("utf-8")
    members["config.json"] = _json_bytes(results.config)
    members["seeds.json"] = _json_bytes(results.seeds)
    env = environment()
    members["environment.json"] = _json_bytes(env)
    inputs = input_digests(results, include)
    members["inputs.json"] = _json_bytes(inputs)
    files = [{"name": n, "sha256": _bytes_digest(b), "bytes": len(b)} for n, b in members.items()]
    key, best = model.headline_fpr, model.strongest
    manifest = {
        "format": BUNDLE_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": {
            "kind": results.kind,
            "subject": model.subject,
            "created": results.created,
            "memberscope_version": results.memberscope_version,
            "schema_version": results.schema_version,
            "dataset_fingerprint": results.dataset.fingerprint,
            "summary": model.summary,
            "headline": None
            if best is None or key is None
            else {"attack": best, "fpr": float(key), "tpr": model.overall_tpr},
            "warnings": list(results.warnings),
        },
        "bundle_environment": {"memberscope": env["libraries"].get("memberscope"), "python": env["python"]},
        "files": files,
        "inputs": [{k: e[k] for k in ("role", "path", "sha256", "recorded_sha256", "status")} for e in inputs],
    }
    manifest_bytes = _json_bytes(manifest)
    path = Path(out) if out is not None else run_dir / "evidence.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*members.items(), (MANIFEST, manifest_bytes)]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    tmp.replace(path)
    return Bundle(path=path, manifest_sha256=_bytes_digest(manifest_bytes), files=files, inputs=inputs)


@dataclass
class Verification:
    """The outcome of :func:`verify_bundle`: ``ok`` when every check passed; ``problems`` says what failed."""

    path: Path
    manifest_sha256: str | None
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return (
                f"OK: {self.checked} files of {self.path} match its manifest (manifest sha256 {self.manifest_sha256})"
            )
        return f"FAILED: {self.path}:\n  - " + "\n  - ".join(self.problems)


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes; a corrupt member (CRC or deflate error) raises ValueError naming it."""
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"{name}: the archive entry is corrupt ({exc})") from None


def verify_bundle(path: str | Path, *, digest: str | None = None, check_inputs: bool = False) -> Verification:
    """Check an evidence bundle against its manifest (and the manifest against ``digest``, when given).

    Every file the manifest lists must be in the archive with the listed SHA-256 and size, and the archive may hold
    no other file. With ``check_inputs``, the model and data files the manifest names are digested again where
    they are now and must match.

    Returns
    -------
    Verification
        ``ok`` False with the failures listed when anything differs.

    Raises
    ------
    InvalidInputError
        When ``path`` is not a zip archive holding a memberscope manifest, or ``digest`` is not 64 hex digits.
    """
    path = Path(path)
    if digest is not None:
        digest = digest.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInputError(f"--digest {digest!r} must be a SHA-256: 64 hexadecimal digits")
    if not path.is_file():
        raise InvalidInputError(f"evidence bundle {str(path)!r} does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InvalidInputError(f"{str(path)!r} is not a zip archive; expected a memberscope evidence bundle") from None
    with archive:
        names = archive.namelist()
        twice = sorted({n for n in names if names.count(n) > 1})
        if MANIFEST not in names:
            raise InvalidInputError(f"{str(path)!r} holds no {MANIFEST}; expected a memberscope evidence bundle")
        result = Verification(path=path, manifest_sha256=None)
        result.problems += [f"{n}: the archive holds it more than once" for n in twice]
        try:
            manifest_bytes = _read_member(archive, MANIFEST)
        except ValueError as exc:
            result.problems.append(str(exc))
            return result
        result.manifest_sha256 = _bytes_digest(manifest_bytes)
        if digest is not None and digest != result.manifest_sha256:
            result.problems.append(
                f"{MANIFEST}: sha256 {result.manifest_sha256} differs from the expected {digest} (the manifest was "
                "changed or this is another bundle)"
            )
        try:
            manifest = json.loads(manifest_bytes.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            result.problems.append(f"{MANIFEST}: not valid JSON ({exc})")
            return result
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise InvalidInputError(
                f"{str(path)!r}: {MANIFEST} is not a {BUNDLE_FORMAT} manifest; expected a memberscope evidence bundle"
            )
        listed = {}
        for entry in manifest.get("files") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                listed[entry["name"]] = entry
        for name, entry in listed.items():
            if name not in names:
                result.problems.append(f"{name}: listed in the manifest but missing from the archive")
                continue
            try:
                data = _read_member(archive, name)
            except ValueError as exc:
                result.problems.append(str(exc))
                continue
            actual = _bytes_digest(data)
            if actual != entry.get("sha256") or len(data) != entry.get("bytes"):
                result.problems.append(
                    f"{name}: sha256 {actual} ({len(data)} bytes) differs from the manifest's {entry.get('sha256')} "
                    f"({entry.get('bytes')} bytes)"
                )
            result.checked += 1
        for name in names:
            if name != MANIFEST and name not in listed:
                result.problems.append(f"{name}: in the archive but not listed in the manifest")
        for entry in manifest.get("inputs") or [] if check_inputs else []:
            if not isinstance(entry, dict):
                continue
            expected = entry.get("sha256") or entry.get("recorded_sha256")
            where = Path(str(entry.get("path")))
            if expected is None:
                result.notes.append(f"input {entry.get('role')} {where}: no digest recorded")
            elif not where.is_file():
                result.problems.append(f"input {entry.get('role')} {where}: the file is missing")
            elif file_digest(where) != expected:
                result.problems.append(f"input {entry.get('role')} {where}: sha256 differs from the bundle's")
            else:
                result.checked += 1
    return result
