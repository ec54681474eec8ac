"""Getting a model archive onto disk safely: download or copy, checksum, unpack.

Model archives come from outside (alphacephei.com, a mirror, a USB stick carried into an
air-gapped site), so unpacking treats every member name as hostile: absolute paths,
``..`` components, drive letters, links and device files are refused before anything is
written, and a size ceiling stops a zip bomb from filling the disk. Nothing here knows
about Vosk; :func:`asr.models.fetch_model` decides what a valid model looks like.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Protocol

# The big Chinese model unpacks to about 1.9 GB; leave room for bigger models, not for
# a decompression bomb.
MAX_UNPACKED_BYTES = 16 * 1024**3
MAX_MEMBERS = 100_000
DOWNLOAD_TIMEOUT_S = 60.0
_COPY_BLOCK = 1 << 20


class ArchiveError(Exception):
    """The archive cannot be fetched or is unsafe or malformed; nothing was installed."""


def is_url(source: str) -> bool:
    """True for an http(s) URL (the only remote sources we fetch)."""
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


def archive_stem(source: str) -> str:
    """The archive's file name without its archive extension (``x-0.22.tar.gz`` -> ``x-0.22``)."""
    name = PurePosixPath(urllib.parse.urlsplit(source).path if is_url(source) else source).name
    for ext in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def obtain(source: str, dest_file: Path, *, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> str:
    """Copy a local archive or download an http(s) URL to ``dest_file``; return its SHA-256."""
    digest = hashlib.sha256()
    try:
        if is_url(source):
            request = urllib.request.Request(source, headers={"User-Agent": "minyi-asr-fetch"})
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                _copy(response, dest_file, digest)
        else:
            with Path(source).open("rb") as src:
                _copy(src, dest_file, digest)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise ArchiveError(f"cannot read {source}: {exc}") from exc
    return digest.hexdigest()


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _copy(src: _Readable, dest_file: Path, digest: _Digest) -> None:
    with dest_file.open("wb") as out:
        while block := src.read(_COPY_BLOCK):
            digest.update(block)
            out.write(block)


def _safe_relative(name: str) -> PurePosixPath:
    """Validate one member name; return it as a relative path or raise ArchiveError."""
    if "\\" in name or "\x00" in name:
        raise ArchiveError(f"unsafe member name {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"absolute member path {name!r}")
    if ".." in path.parts:
        raise ArchiveError(f"member escapes the archive: {name!r}")
    return path


def extract(archive: Path, dest: Path) -> None:
    """Unpack a .zip or tar (plain, gz, bz2, xz) archive into the empty directory ``dest``."""
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, dest)
    elif tarfile.is_tarfile(archive):
        _extract_tar(archive, dest)
    else:
        raise ArchiveError(f"{archive.name}: not a zip or tar archive")


def _check_budget(count: int, total: int) -> None:
    if count > MAX_MEMBERS:
        raise ArchiveError(f"more than {MAX_MEMBERS} members")
    if total > MAX_UNPACKED_BYTES:
        raise ArchiveError(f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            total = 0
            for info in infos:
                _safe_relative(info.filename)
                mode = info.external_attr >> 16
                if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise ArchiveError(f"link or special file in archive: {info.filename!r}")
                total += info.file_size
            _check_budget(len(infos), total)
            for info in infos:
                target = dest.joinpath(*_safe_relative(info.filename).parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, _COPY_BLOCK)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"{archive.name}: damaged zip: {exc}") from exc


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _safe_relative(member.name)
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(f"link or special file in archive: {member.name!r}")
            _check_budget(len(members), sum(m.size for m in members))
            # The checks above already refuse everything the 'data' filter would; passing
            # it anyway keeps Python 3.12+ from warning and is a second line of defence.
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tf.extractall(dest, members=members)
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive.name}: damaged tar: {exc}") from exc


def single_root(directory: Path) -> Path:
    """The one top-level directory an archive unpacked into, or ``directory`` itself."""
    entries = [e for e in directory.iterdir() if e.name not in ("__MACOSX", ".DS_Store")]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return directory


def make_tree_readable(root: Path) -> None:
    """Give every unpacked file and directory read (and directory search) permission.

    Archives made on a desktop sometimes carry 0600 files; the service user must read them.
    """
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
