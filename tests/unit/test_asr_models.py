"""Model registry, the quick file check, safe installation from archives, ``minyi asr``,
and a missing model refused before anything is decoded or started."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asr.archive import ArchiveError, archive_stem
from asr.cli import main
from asr.errors import FailureReason, TranscriptionFailed
from asr.models import (
    KNOWN_MODELS,
    ModelRegistry,
    ModelSpec,
    bundled_test_model,
    check_model_files,
    detect_sample_rate,
    fetch_model,
    resolve_source,
)
from asr.pool import AsrPool, default_pool_size
from asr.worker_core import transcribe_recording
from tests.asr_fixtures import SpeechFiles, korean_model

LOOKAHEAD_FILES = (
    "am/final.mdl",
    "conf/model.conf",
    "conf/mfcc.conf",
    "graph/HCLr.fst",
    "graph/Gr.fst",
    "graph/disambig_tid.int",
    "graph/phones/word_boundary.int",
    "ivector/final.ie",
    "ivector/final.dubm",
    "ivector/final.mat",
    "ivector/global_cmvn.stats",
    "ivector/online_cmvn.conf",
    "ivector/splice.conf",
    "README",
)


def make_model_tree(root: Path, files: tuple[str, ...] = LOOKAHEAD_FILES) -> Path:
    """A directory with a Vosk model's file layout (contents are placeholders)."""
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("--sample-frequency=16000\n" if rel.endswith("mfcc.conf") else rel)
    return root


def make_tar(path: Path, root: Path, top: str | None = "vosk-model-small-cn-0.22") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for item in sorted(root.rglob("*")):
            arcname = item.relative_to(root).as_posix()
            tf.add(item, arcname=f"{top}/{arcname}" if top else arcname, recursive=False)
    return path


def make_zip(path: Path, root: Path, top: str = "vosk-model-small-cn-0.22") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for item in sorted(root.rglob("*")):
            if item.is_file():
                zf.write(item, f"{top}/{item.relative_to(root).as_posix()}")
    return path


# ---- quick check and registry ------------------------------------------------------------


def test_korean_test_model_is_present_and_16k() -> None:
    spec = korean_model()
    check = check_model_files(spec.path)
    assert (check.present, check.layout, check.missing) == (True, "v2", ())
    assert spec.decode_rate() == detect_sample_rate(spec.path) == 16000


def test_quick_check_names_missing_files(tmp_path: Path) -> None:
    assert not check_model_files(tmp_path / "absent").present
    assert check_model_files(tmp_path).missing == ("am/final.mdl", "conf/model.conf")
    partial = [f for f in LOOKAHEAD_FILES if f not in ("graph/Gr.fst", "ivector/final.mat")]
    check = check_model_files(make_model_tree(tmp_path / "m", tuple(partial)))
    assert not check.present
    assert set(check.missing) == {"graph/Gr.fst", "ivector/final.mat"}
    static = make_model_tree(
        tmp_path / "hclg", ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf", "graph/HCLG.fst")
    )
    assert check_model_files(static).present
    old = make_model_tree(tmp_path / "v1", ("final.mdl", "mfcc.conf", "HCLG.fst"))
    assert check_model_files(old).layout == "v1"


def test_sample_rate_comes_from_mfcc_conf(tmp_path: Path) -> None:
    model = make_model_tree(tmp_path / "m")
    (model / "conf/mfcc.conf").write_text("--use-energy=false\n--sample-frequency=8000\n")
    assert detect_sample_rate(model) == 8000
    (model / "conf/mfcc.conf").write_text("--use-energy=false\n")
    assert detect_sample_rate(model) == 16000  # Kaldi's default


def test_registry_defaults_and_settings(tmp_path: Path) -> None:
    registry = ModelRegistry.from_settings(None, models_dir=tmp_path)
    assert registry.default == "small-cn"
    assert registry.get().path == tmp_path / "vosk-model-small-cn-0.22"
    assert registry.get("cn").path == tmp_path / "vosk-model-cn-0.22"
    assert registry.get("ko-test") == bundled_test_model()
    settings = {
        "models_dir": str(tmp_path / "elsewhere"),
        "model": "custom",
        "models": {
            "custom": {"path": "my-model", "language": "zh-CN", "sample_rate": 8000},
            "abs": {"path": "/opt/models/x", "notes": "absolute"},
        },
    }
    registry = ModelRegistry.from_settings(settings)
    assert registry.get().path == tmp_path / "elsewhere/my-model"
    assert registry.get().decode_rate() == 8000
    assert registry.get("abs").path == Path("/opt/models/x")
    with pytest.raises(KeyError):
        registry.get("nope")
    with pytest.raises(ValueError):
        ModelRegistry.from_settings({"model": "nope"})
    with pytest.raises(ValueError):
        ModelRegistry.from_settings({"models": {"x": {"language": "zh"}}})


def test_known_models_are_documented_with_published_figures() -> None:
    small, big = KNOWN_MODELS["small-cn"], KNOWN_MODELS["cn"]
    assert small.name == "vosk-model-small-cn-0.22" and "23.54 (SpeechIO-02)" in small.error_rates
    assert big.name == "vosk-model-cn-0.22" and "7.43 (THCHS)" in big.error_rates
    assert resolve_source("small-cn") == resolve_source("vosk-model-small-cn-0.22") == small.url
    assert archive_stem("https://x/y/vosk-model-cn-0.22.zip?a=1") == "vosk-model-cn-0.22"
    assert archive_stem("/tmp/m.tar.gz") == "m"


# ---- fetch -------------------------------------------------------------------------------


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_fetch_installs_from_a_local_archive(tmp_path: Path, kind: str) -> None:
    tree = make_model_tree(tmp_path / "src")
    archive = tmp_path / f"vosk-model-small-cn-0.22.{kind}"
    (make_tar if kind == "tar.gz" else make_zip)(archive, tree)
    dest = tmp_path / "models"
    installed = fetch_model(str(archive), dest)
    assert installed == dest / "vosk-model-small-cn-0.22"
    assert check_model_files(installed).present
    assert (installed / "README").read_text() == "README"
    assert stat.S_IMODE((installed / "am/final.mdl").stat().st_mode) == 0o644
    assert _leftovers(dest) == []


def test_fetch_flat_archive_takes_its_name_from_the_file(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "my-model-1.0.tar.gz", make_model_tree(tmp_path / "s"), top=None)
    assert fetch_model(str(archive), tmp_path / "m").name == "my-model-1.0"
    assert fetch_model(str(archive), tmp_path / "m", name="other").name == "other"


def test_fetch_checks_the_checksum_and_refuses_to_overwrite(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", make_model_tree(tmp_path / "s"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "models"
    with pytest.raises(ArchiveError, match="checksum mismatch"):
        fetch_model(str(archive), dest, sha256="0" * 64)
    assert list(dest.iterdir()) == []
    first = fetch_model(str(archive), dest, sha256=digest.upper())
    (first / "marker").write_text("old")
    with pytest.raises(ArchiveError, match="already exists"):
        fetch_model(str(archive), dest)
    assert (first / "marker").exists()
    assert fetch_model(str(archive), dest, replace=True) == first
    assert not (first / "marker").exists()
    assert _leftovers(dest) == []


def _evil_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../escaped"),
        tarfile.TarInfo("m/../../escaped"),
        tarfile.TarInfo("/tmp/escaped-absolute"),
    ],
)
def test_tar_path_traversal_is_refused(tmp_path: Path, member: tarfile.TarInfo) -> None:
    member.size = 1
    archive = _evil_tar(tmp_path / "evil.tar.gz", member)
    dest = tmp_path / "models"
    with pytest.raises(ArchiveError):
        fetch_model(str(archive), dest)
    assert not (tmp_path / "escaped").exists()
    assert list(dest.iterdir()) == []


def test_tar_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("m/am")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc"
    with pytest.raises(ArchiveError, match="link"):
        fetch_model(str(_evil_tar(tmp_path / "l.tar.gz", link)), tmp_path / "models")


def test_zip_traversal_and_symlinks_are_refused(tmp_path: Path) -> None:
    traversal = tmp_path / "t.zip"
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../escaped", "x")
    with pytest.raises(ArchiveError, match="escapes"):
        fetch_model(str(traversal), tmp_path / "models")
    symlink = tmp_path / "s.zip"
    with zipfile.ZipFile(symlink, "w") as zf:
        info = zipfile.ZipInfo("m/am")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc")
    with pytest.raises(ArchiveError, match="link"):
        fetch_model(str(symlink), tmp_path / "models")
    assert not (tmp_path / "escaped").exists()


def test_fetch_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("hello")
    with pytest.raises(ArchiveError, match="not a Vosk model"):
        fetch_model(str(make_tar(tmp_path / "n.tar.gz", notes)), tmp_path / "models")
    garbage = tmp_path / "g.zip"
    garbage.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ArchiveError):
        fetch_model(str(garbage), tmp_path / "models")
    with pytest.raises(ArchiveError, match="cannot read"):
        fetch_model(str(tmp_path / "absent.zip"), tmp_path / "models")
    assert _leftovers(tmp_path / "models") == []


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server publishing a directory."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_downloads_a_url(tmp_path: Path, http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    make_zip(root / "vosk-model-small-cn-0.22.zip", make_model_tree(tmp_path / "s"))
    installed = fetch_model(f"{base}/vosk-model-small-cn-0.22.zip", tmp_path / "models")
    assert check_model_files(installed).present
    with pytest.raises(ArchiveError, match="404"):
        fetch_model(f"{base}/missing.zip", tmp_path / "models")


# ---- minyi asr ---------------------------------------------------------------------------


def test_cli_models_lists_known_and_test_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["models", "--json", "--models-dir", str(tmp_path)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {line["name"]: line for line in lines}
    assert status == 1, "the default small-cn model is not installed here"
    assert by_name["small-cn"]["default"] and not by_name["small-cn"]["present"]
    assert by_name["small-cn"]["published"]["error_rates"].startswith("23.54")
    assert by_name["ko-test"]["present"] and by_name["ko-test"]["sample_rate"] == 16000


def test_cli_models_with_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[asr]\nmodels_dir = "{tmp_path}"\nmodel = "ko-test"\n')
    assert main(["models", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "* ko-test" in out and "vosk-model-cn-0.22, 1.3G" in out
    config.write_text("[asr\n")
    assert main(["models", "--config", str(config)]) == 2
    assert main(["models"], {"model": "ko-test"}) == 0


def test_cli_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", make_model_tree(tmp_path / "s"))
    assert main(["fetch", str(archive), "--dest", str(tmp_path / "m"), "--name", "small"]) == 0
    assert "installed" in capsys.readouterr().out
    assert (
        main(["fetch", str(archive), "--models-dir", str(tmp_path / "m"), "--name", "small"]) == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert main(["fetch", str(tmp_path / "nope.zip"), "--dest", str(tmp_path)]) == 1


def test_cli_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main([]) == 2
    assert main(["transcribe"]) == 2
    capsys.readouterr()


def test_missing_model_is_a_retryable_failure(speech: SpeechFiles, tmp_path: Path) -> None:
    absent = ModelSpec("small-cn", tmp_path / "vosk-model-small-cn-0.22", "zh-CN", 16000)
    with pytest.raises(TranscriptionFailed) as info:
        transcribe_recording({"citizen": speech.citizen_8k}, absent)
    assert info.value.reason is FailureReason.MODEL_UNAVAILABLE and info.value.retryable


def test_a_missing_model_is_refused_before_any_process_starts(tmp_path: Path) -> None:
    absent = ModelSpec("small-cn", tmp_path / "vosk-model-small-cn-0.22", "zh-CN", 16000)
    with pytest.raises(TranscriptionFailed) as info:
        AsrPool(absent, workers=1)
    assert info.value.reason is FailureReason.MODEL_UNAVAILABLE
    assert default_pool_size() >= 1
