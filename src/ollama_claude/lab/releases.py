"""Release-shaped artifacts for the lab mirror: Ollama releases with exactly the files the real ones publish (the
Linux and macOS archives carry the stand-in as `ollama`), and Claude Code's native package laid out like the npm
registry, so the real deploy runs offline against them unchanged.

Facts about Ollama's releases cite its source as `<path>@<tag>:<lines>` (`git show <tag>:<path>` in the
ollama/ollama repository): release.yaml is .github/workflows/release.yaml, build_darwin.sh, build_windows.ps1 and
install.sh are under scripts/.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import platform
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ollama_claude.lab.standin_server import baked_standin
from ollama_claude.mirror.layout import cache_dir, ollama_release_dir, write_atomically

#: 0.16.3 is below the toolkit's floor (upgrade tests), 0.18.0 the floor, 0.32.15 the default.
OLLAMA_VERSIONS = ("0.16.3", "0.18.0", "0.32.15")
OLLAMA_ARCHES = ("amd64", "arm64")
CLAUDE_CODE_VERSION = "2.1.332"
CLAUDE_CODE_PLATFORMS = ("linux-x64", "linux-arm64")
CLAUDE_CODE_SCOPE = "@anthropic-ai"

ARCHIVE_MTIME = 1_700_000_000  # fixed, so rebuilt archives are byte-identical
ZIP_DATE = (2023, 11, 14, 22, 13, 20)  # ARCHIVE_MTIME as a zip timestamp
#: Pads the main Linux archives to this many bytes (see padded_archive); 0 or unset: small archives.
RELEASE_SIZE_ENV = "OLLAMA_CLAUDE_RELEASE_SIZE"
#: Bump when the layout of built releases changes, so stamped release directories are rebuilt.
FORMAT = "3"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _within(version: str, since: str | None, before: str | None) -> bool:
    key = version_key(version)
    return (since is None or key >= version_key(since)) and (before is None or key < version_key(before))


# ----------------------------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Artifact:
    """One file of a release's upload list, present for since <= version < before."""

    name: str
    kind: str  # how the lab makes it: linux, darwin-zip, darwin-tgz, install.sh, placeholder
    source: str
    since: str | None = None
    before: str | None = None
    arch: str | None = None  # Linux archives: the architecture they are for


# Every file the release job uploads: `dist/*.txt *.zip *.tgz *.tar.zst *.exe *.dmg *.ps1 *.sh`
# (release.yaml@v0.32.15:788; the same list at @v0.16.3:543 and @v0.18.0:583). sha256sum.txt is added by
# build_ollama_release. Linux ships only .tar.zst since v0.14.0 (commit 34d0c55): no ollama-linux-*.tgz exists for
# any modelled version; the one .tgz is darwin's. Placeholder files are bytes of our own, not the real payload:
# the dmg and the Windows files exist so the upload list and sha256sum.txt are complete; nothing here runs them.
ARTIFACTS: tuple[Artifact, ...] = (
    # The Linux bundles: one .tar.in list per archive, `tar c ... --owner 0 --group 0 | zstd` each
    # (release.yaml@v0.32.15:660-686; @v0.16.3:380-402 and @v0.18.0:420-442 with zstd --ultra -22).
    Artifact("ollama-linux-amd64.tar.zst", "linux", "release.yaml@v0.32.15:662-666", arch="amd64"),
    Artifact("ollama-linux-arm64.tar.zst", "linux", "release.yaml@v0.32.15:662-666", arch="arm64"),
    Artifact("ollama-linux-amd64-rocm.tar.zst", "linux", "release.yaml@v0.32.15:671,586-596 (@v0.16.3:389)",
             arch="amd64"),
    # lib/ollama/mlx* went into the main archive up to v0.23.0 (release.yaml@v0.23.0:426), its own from v0.23.1.
    Artifact("ollama-linux-amd64-mlx.tar.zst", "linux", "release.yaml@v0.23.1:426-427, @v0.32.15:667-668",
             since="0.23.1", arch="amd64"),
    Artifact("ollama-linux-arm64-jetpack5.tar.zst", "linux", "release.yaml@v0.32.15:669 (@v0.16.3:387)",
             arch="arm64"),
    Artifact("ollama-linux-arm64-jetpack6.tar.zst", "linux", "release.yaml@v0.32.15:670 (@v0.16.3:388)",
             arch="arm64"),
    # macOS: the app zipped by ditto, the CLI tarball of the app's Resources, the disk image (placeholder).
    Artifact("Ollama-darwin.zip", "darwin-zip", "build_darwin.sh@v0.32.15:256-257 (@v0.16.3:179-180)"),
    Artifact("ollama-darwin.tgz", "darwin-tgz", "build_darwin.sh@v0.32.15:258 (@v0.16.3:181)"),
    Artifact("Ollama.dmg", "placeholder", "build_darwin.sh@v0.32.15:267-285"),
    # Windows (placeholders): bundles-windows uploads dist/*.zip, *.ps1, OllamaSetup.exe (release.yaml@v0.32.15:
    # 454-460); the zips come from build_windows.ps1's zip step.
    Artifact("OllamaSetup.exe", "placeholder", "release.yaml@v0.32.15:460,754"),
    Artifact("install.ps1", "placeholder", "build_windows.ps1@v0.32.15:1014-1016 (@v0.16.3:305-307)"),
    Artifact("ollama-windows-amd64.zip", "placeholder", "build_windows.ps1@v0.32.15:1255-1257 (@v0.16.3:354-355)"),
    Artifact("ollama-windows-amd64-rocm.zip", "placeholder",
             "build_windows.ps1@v0.32.15:1241-1244 (@v0.16.3:343-351)"),
    # Needs the 'MLX CUDA 13' Windows preset: first in release.yaml@v0.18.0:122 (absent up to v0.17.7).
    Artifact("ollama-windows-amd64-mlx.zip", "placeholder", "build_windows.ps1@v0.18.0:481-485, @v0.32.15:1248-1251",
             since="0.18.0"),
    Artifact("ollama-windows-arm64.zip", "placeholder", "build_windows.ps1@v0.32.15:1261-1266 (@v0.16.3:361-364)"),
    Artifact("install.sh", "install.sh", "release.yaml@v0.32.15:750 (@v0.16.3:520): cp scripts/install.sh"),
)


@dataclass(frozen=True)
class Payload:
    """One file of a Linux archive (bare path, as `tar c -C dist/linux-<arch> -T <list>` stores it)."""

    path: str
    archive: str  # the archive's suffix after ollama-linux-<arch>: "" (main), -rocm, -mlx, -jetpack5, -jetpack6
    arches: tuple[str, ...]
    source: str
    since: str | None = None
    before: str | None = None


BOTH, AMD64, ARM64 = ("amd64", "arm64"), ("amd64",), ("arm64",)
# Which archive a component goes to is release.yaml's case list (@v0.32.15:660-672, @v0.18.0:420-430,
# @v0.16.3:380-390); which components exist per arch is the Dockerfile's amd64/arm64/rocm stages (Dockerfile@
# v0.32.15:265-291, @v0.18.0:193-212, @v0.16.3:179-199). Runner files are small placeholders of real names.
LINUX_PAYLOAD: tuple[Payload, ...] = (
    Payload("bin/ollama", "", BOTH, "release.yaml@v0.32.15:662; Dockerfile@v0.32.15:291"),
    Payload("lib/ollama/libggml-base.so", "", BOTH, "release.yaml@v0.32.15:663 (lib/ollama/*.so*)"),
    Payload("lib/ollama/libggml-cpu-haswell.so", "", AMD64, "release.yaml@v0.32.15:663"),
    Payload("lib/ollama/libggml-cpu-skylakex.so", "", AMD64, "release.yaml@v0.32.15:663"),
    Payload("lib/ollama/libggml-cpu-x64.so", "", AMD64, "release.yaml@v0.32.15:663"),
    Payload("lib/ollama/libggml-cpu-armv8.0_1.so", "", ARM64, "release.yaml@v0.32.15:663"),
    # llama.cpp's server and its libraries from v0.30.0 (release.yaml@v0.30.0:610,619 require and pack them;
    # llama/server/CMakeLists.txt@v0.32.15:522-540 installs llama-server, llama-quantize, libllama, libmtmd).
    Payload("lib/ollama/llama-server", "", BOTH, "release.yaml@v0.32.15:655,664", since="0.30.0"),
    Payload("lib/ollama/llama-quantize", "", BOTH, "release.yaml@v0.32.15:664", since="0.30.0"),
    Payload("lib/ollama/libllama.so", "", BOTH, "release.yaml@v0.32.15:663", since="0.30.0"),
    Payload("lib/ollama/libmtmd.so", "", BOTH, "release.yaml@v0.32.15:663", since="0.30.0"),
    Payload("lib/ollama/cuda_v12/libggml-cuda.so", "", BOTH, "release.yaml@v0.32.15:665"),
    Payload("lib/ollama/cuda_v13/libggml-cuda.so", "", BOTH, "release.yaml@v0.32.15:665"),
    Payload("lib/ollama/vulkan/libggml-vulkan.so", "", AMD64, "release.yaml@v0.32.15:666; Dockerfile@v0.32.15:269"),
    # MLX (CMakePresets.json@v0.18.0:116 OLLAMA_RUNNER_DIR mlx_cuda_v13), amd64 only (Dockerfile@v0.32.15:270).
    Payload("lib/ollama/mlx_cuda_v13/libmlx.so", "", AMD64, "release.yaml@v0.18.0:426", before="0.23.1"),
    Payload("lib/ollama/mlx_cuda_v13/libmlxc.so", "", AMD64, "release.yaml@v0.18.0:426", before="0.23.1"),
    Payload("lib/ollama/mlx_cuda_v13/libmlx.so", "-mlx", AMD64, "release.yaml@v0.32.15:667", since="0.23.1"),
    Payload("lib/ollama/mlx_cuda_v13/libmlxc.so", "-mlx", AMD64, "release.yaml@v0.32.15:667", since="0.23.1"),
    Payload("lib/ollama/include/mlx/c/mlx.h", "-mlx", AMD64, "release.yaml@v0.32.15:668", since="0.23.1"),
    # ROCm: lib/ollama/rocm up to 0.29 (release.yaml@v0.24.0:430), rocm_v7_2 from 0.30 (@v0.30.0:626,
    # Dockerfile@v0.30.0:126); the rocm archive holds nothing else (release.yaml@v0.32.15:675-676).
    Payload("lib/ollama/rocm/libggml-hip.so", "-rocm", AMD64, "release.yaml@v0.16.3:389", before="0.30.0"),
    Payload("lib/ollama/rocm/rocblas/library/TensileLibrary.dat", "-rocm", AMD64, "Dockerfile@v0.18.0:93",
            before="0.30.0"),
    Payload("lib/ollama/rocm_v7_2/libggml-hip.so", "-rocm", AMD64, "release.yaml@v0.32.15:671", since="0.30.0"),
    Payload("lib/ollama/rocm_v7_2/rocblas/library/TensileLibrary.dat", "-rocm", AMD64, "Dockerfile@v0.32.15:135",
            since="0.30.0"),
    Payload("lib/ollama/cuda_jetpack5/libggml-cuda.so", "-jetpack5", ARM64, "release.yaml@v0.32.15:669"),
    Payload("lib/ollama/cuda_jetpack6/libggml-cuda.so", "-jetpack6", ARM64, "release.yaml@v0.32.15:670"),
)
#: The runner that carries the padding when a realistic size is asked for (CUDA runners are the bulk of a bundle).
PADDED_MEMBER = "lib/ollama/cuda_v13/libggml-cuda.so"


@dataclass(frozen=True)
class AppFile:
    """One file in Ollama.app/Contents/Resources (and so in ollama-darwin.tgz)."""

    path: str
    source: str
    since: str | None = None
    before: str | None = None


DARWIN_RESOURCES: tuple[AppFile, ...] = (
    AppFile("ollama", "build_darwin.sh@v0.32.15:236 (@v0.16.3:155-168)"),
    AppFile("libmlx.dylib", "build_darwin.sh@v0.18.0:157-161", before="0.30.0"),
    AppFile("libmlxc.dylib", "build_darwin.sh@v0.18.0:157-161", before="0.30.0"),
    AppFile("mlx.metallib", "build_darwin.sh@v0.18.0:163", before="0.30.0"),
    AppFile("llama-server", "build_darwin.sh@v0.32.15:145-147,237", since="0.30.0"),
    AppFile("llama-quantize", "build_darwin.sh@v0.32.15:149-151,238", since="0.30.0"),
    AppFile("mlx_metal_v3/libmlx.dylib", "build_darwin.sh@v0.32.15:110-125,240", since="0.30.0"),
    AppFile("mlx_metal_v3/libmlxc.dylib", "build_darwin.sh@v0.32.15:110-125,240", since="0.30.0"),
    AppFile("mlx_metal_v3/mlx.metallib", "build_darwin.sh@v0.32.15:127-134,240", since="0.30.0"),
)
EXECUTABLES = {"bin/ollama", "ollama", "lib/ollama/llama-server", "lib/ollama/llama-quantize", "llama-server",
               "llama-quantize"}

# ----------------------------------------------------------------------------------------------- install.sh

# Ours, not Ollama's: the real script is Ollama's code (not committed here) and is not fetched. Same file in
# every release, as the real one is: `git diff v0.16.3 v0.32.15 -- scripts/install.sh` is empty.
INSTALL_SH = r"""#!/bin/sh
# install.sh of the ollama-claude lab's release mirror. NOT Ollama's script: it does what the Linux part of
# scripts/install.sh@v0.32.15 (identical at v0.16.3 and v0.18.0) does on a plain amd64/arm64 host, so lab tests
# can make "a host installed by install.sh, not by this toolkit":
#   :35-40    ARCH from uname -m (x86_64 -> amd64, aarch64|arm64 -> arm64)
#   :110-127  root, or sudo; curl and friends present
#   :129-157  ollama-linux-$ARCH.tar.zst, `curl | zstd -d | tar -xf - -C /usr/local`. A .tar.zst release needs
#             zstd on the host (:138-143 stops without it); releases >= 0.14 publish no Linux .tgz to fall back to
#   :159-171  BINDIR = the first of /usr/local/bin /usr/bin /bin on PATH; old lib/ollama removed; dirs made
#   :173-176  BINDIR/ollama linked when the install dir's bin is not BINDIR
#   :197-212  system user and group `ollama` (home /usr/share/ollama), added to render/video; caller to ollama
#   :215-230  /etc/systemd/system/ollama.service, this exact unit
#   :231-240  when systemd runs: daemon-reload, enable, restart
# Left out: macOS (:48-93), WSL (:101-108, :254-262), JetPack (:178-187, :264-269), GPU detection, driver
# install and the ROCm add-on (:271-end). Differs in where it downloads from: OLLAMA_DOWNLOAD_URL, the release
# directory (e.g. http://<mirror>/ollama/releases/download/v0.32.15), is required; the real script asks
# https://ollama.com/download (?version=$OLLAMA_VERSION) and probes the .tar.zst with a HEAD request first.
main() {
set -eu

status() { echo ">>> $*" >&2; }
error() { echo "ERROR: $*"; exit 1; }
warning() { echo "WARNING: $*"; }
available() { command -v "$1" >/dev/null; }

[ "$(uname -s)" = "Linux" ] || error 'This script is intended to run on Linux only.'
ARCH=$(uname -m)
case "$ARCH" in
    x86_64) ARCH="amd64" ;;
    aarch64|arm64) ARCH="arm64" ;;
    *) error "Unsupported architecture: $ARCH" ;;
esac
: "${OLLAMA_DOWNLOAD_URL:?set OLLAMA_DOWNLOAD_URL to the release directory, e.g. http://<mirror>/ollama/releases/download/v<version>}"

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    available sudo || error "This script requires superuser permissions. Please re-run as root."
    SUDO="sudo"
fi
for TOOL in curl tar; do
    available $TOOL || error "$TOOL is required but missing"
done
available zstd || error "This version requires zstd for extraction. Please install zstd and try again:
  - Debian/Ubuntu: sudo apt-get install zstd
  - RHEL/CentOS/Fedora: sudo dnf install zstd
  - Arch: sudo pacman -S zstd"

for BINDIR in /usr/local/bin /usr/bin /bin; do
    echo $PATH | grep -q $BINDIR && break || continue
done
OLLAMA_INSTALL_DIR=$(dirname ${BINDIR})

if [ -d "$OLLAMA_INSTALL_DIR/lib/ollama" ] ; then
    status "Cleaning up old version at $OLLAMA_INSTALL_DIR/lib/ollama"
    $SUDO rm -rf "$OLLAMA_INSTALL_DIR/lib/ollama"
fi
status "Installing ollama to $OLLAMA_INSTALL_DIR"
$SUDO install -o0 -g0 -m755 -d $BINDIR
$SUDO install -o0 -g0 -m755 -d "$OLLAMA_INSTALL_DIR/lib/ollama"
status "Downloading ollama-linux-${ARCH}.tar.zst"
curl --fail --show-error --location --silent "${OLLAMA_DOWNLOAD_URL%/}/ollama-linux-${ARCH}.tar.zst" | \
    zstd -d | $SUDO tar -xf - -C "$OLLAMA_INSTALL_DIR"

if [ "$OLLAMA_INSTALL_DIR/bin/ollama" != "$BINDIR/ollama" ] ; then
    status "Making ollama accessible in the PATH in $BINDIR"
    $SUDO ln -sf "$OLLAMA_INSTALL_DIR/ollama" "$BINDIR/ollama"
fi

available systemctl || exit 0
if ! id ollama >/dev/null 2>&1; then
    status "Creating ollama user..."
    $SUDO useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama
fi
if getent group render >/dev/null 2>&1; then
    $SUDO usermod -a -G render ollama
fi
if getent group video >/dev/null 2>&1; then
    $SUDO usermod -a -G video ollama
fi
$SUDO usermod -a -G ollama $(whoami)

status "Creating ollama systemd service..."
cat <<EOF | $SUDO tee /etc/systemd/system/ollama.service >/dev/null
[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=$BINDIR/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3
Environment="PATH=$PATH"

[Install]
WantedBy=default.target
EOF
SYSTEMCTL_RUNNING="$(systemctl is-system-running || true)"
case $SYSTEMCTL_RUNNING in
    running|degraded)
        status "Enabling and starting ollama service..."
        $SUDO systemctl daemon-reload
        $SUDO systemctl enable ollama
        $SUDO systemctl restart ollama
        ;;
    *)
        warning "systemd is not running"
        ;;
esac
status 'Install complete. Run "ollama" from the command line.'
}
main
"""





def release_artifact_names(version: str, arches: tuple[str, ...] = OLLAMA_ARCHES) -> list[str]:
    """The files a release publishes (sha256sum.txt aside); arches limits the Linux archives."""
    return [a.name for a in _artifacts(version, arches)]


def _artifacts(version: str, arches: tuple[str, ...]) -> list[Artifact]:
    return [a for a in ARTIFACTS if _within(version, a.since, a.before) and (a.arch is None or a.arch in arches)]


def linux_payload(version: str, arch: str, archive: str) -> list[str]:
    """The bare paths one Linux archive holds (archive: "" for the main one, or its suffix such as -rocm)."""
    return [p.path for p in LINUX_PAYLOAD
            if p.archive == archive and arch in p.arches and _within(version, p.since, p.before)]


def darwin_resources(version: str) -> list[str]:
    return [f.path for f in DARWIN_RESOURCES if _within(version, f.since, f.before)]


# ----------------------------------------------------------------------------------------------- archives


def _file_content(version: str, path: str, where: str) -> bytes:
    if Path(path).name == "ollama":
        return baked_standin(version).encode()
    return f"placeholder {path} of ollama {version} {where}\n".encode()


def _mode(path: str) -> int:
    return 0o755 if path in EXECUTABLES or re.search(r"\.(so|dylib)(\.\d+)*$", path) else 0o644


def _tar_order(paths: list[str], components: list[str]) -> list[tuple[str, bool]]:
    """(name, is_dir) in the order tar writes them for these top-level components: a directory component is
    written as its entry and then everything under it (subdirectories before their files; readdir order in the
    real run, sorted here so the archive is deterministic)."""
    entries: list[tuple[str, bool]] = []
    for component in components:
        below = sorted(p for p in paths if p.startswith(component + "/"))
        if component in paths:
            entries.append((component, False))
            continue
        seen = set()
        entries.append((component, True))
        for path in below:
            parts = path.split("/")
            for depth in range(component.count("/") + 2, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in seen:
                    seen.add(directory)
                    entries.append((directory, True))
            entries.append((path, False))
    return entries


def _linux_components(paths: list[str]) -> list[str]:
    """The `.tar.in` list: release.yaml@v0.32.15:660-672 loops over `bin/* lib/ollama/*` (glob order)."""
    return sorted({"/".join(p.split("/")[: 2 if p.startswith("bin/") else 3]) for p in paths})


def _tar_header(name: str, is_dir: bool, size: int, mode: int, owner=(0, "root", 0, "root"),
                fmt=tarfile.GNU_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size, info.mtime = (0 if is_dir else size), ARCHIVE_MTIME
    info.mode = 0o755 if is_dir else mode
    info.uid, info.uname, info.gid, info.gname = owner
    return info.tobuf(fmt, "utf-8", "surrogateescape")


def _block_pad(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _tar_end(length: int) -> bytes:
    """Two zero blocks, then zeros up to a whole record, as GNU tar (and tarfile) end an archive."""
    length += 2 * tarfile.BLOCKSIZE
    return b"\0" * (2 * tarfile.BLOCKSIZE + (-length % tarfile.RECORDSIZE))


def _linux_tar(version: str, arch: str, archive: str, padded: int = 0) -> tuple[bytes, bytes]:
    """The tar stream of one Linux archive as (up to and including PADDED_MEMBER's header, the rest after its
    data). Members are bare paths owned by 0/root, as `tar c -C dist/linux-<arch> -T <list> --owner 0 --group 0`
    writes them (release.yaml@v0.32.15:685): no `./` prefix, no entries for bin/, lib/ or lib/ollama/.
    With padded > 0 PADDED_MEMBER's data (padded bytes, a whole number of blocks) is left out: the caller
    streams it between the two parts; else the first part is the whole archive and the second empty."""
    paths = linux_payload(version, arch, archive)
    where = f"linux-{arch}{archive}"
    head, tail = io.BytesIO(), io.BytesIO()
    out = head
    for name, is_dir in _tar_order(paths, _linux_components(paths)):
        if is_dir:
            out.write(_tar_header(name, True, 0, 0o755))
            continue
        if padded and name == PADDED_MEMBER:
            assert padded % tarfile.BLOCKSIZE == 0
            out.write(_tar_header(name, False, padded, _mode(name)))
            out = tail
            continue
        data = _file_content(version, name, where)
        out.write(_tar_header(name, False, len(data), _mode(name)) + data + _block_pad(len(data)))
    tail.write(_tar_end(head.tell() + padded + tail.tell()))
    return head.getvalue(), tail.getvalue()


def _zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c", "-19"], input=data, capture_output=True, check=True).stdout


def linux_archive(version: str, arch: str, archive: str = "") -> bytes:
    """One Linux .tar.zst (zstd -19 as release.yaml@v0.32.15:685; @v0.16.3:401 used --ultra -22)."""
    head, tail = _linux_tar(version, arch, archive)
    return _zstd(head + tail)


# -- padding: a realistic size without a realistic build time.
# The archive is three zstd frames, concatenated as the format allows (`zstd -d` decodes them one after the
# other): the tar up to PADDED_MEMBER's header at -19, the member's data as *raw* zstd blocks (random bytes do
# not compress; writing them uncompressed is what zstd itself does with them, without the CPU time), and the rest
# at -19; a skippable frame (ignored by decoders) then makes the file exactly the asked size.
ZSTD_MAGIC = 0xFD2FB528
ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
RAW_BLOCK = 128 * 1024  # the largest block; the window (2^17) announced below allows it
RAW_FRAME_HEADER = struct.pack("<IBB", ZSTD_MAGIC, 0x00, (17 - 10) << 3)  # no checksum, no size, 128 KiB window
PAD_CHUNK = 1 << 20


def _raw_frame_size(length: int) -> int:
    return len(RAW_FRAME_HEADER) + length + 3 * max(1, math.ceil(length / RAW_BLOCK))


def _random_stream(length: int, seed: bytes) -> Iterator[bytes]:
    """Deterministic incompressible bytes (SHAKE-256 in counter mode), in chunks."""
    for index in range(math.ceil(length / PAD_CHUNK)):
        yield hashlib.shake_256(seed + index.to_bytes(8, "big")).digest(min(PAD_CHUNK, length - index * PAD_CHUNK))


def _write_raw_frame(out, length: int, seed: bytes, digest) -> None:
    """A zstd frame of raw blocks holding length random bytes (PAD_CHUNK is a whole number of blocks)."""
    digest.update(RAW_FRAME_HEADER)
    out.write(RAW_FRAME_HEADER)
    written = 0
    for chunk in _random_stream(length, seed):
        view = memoryview(chunk)
        for offset in range(0, len(chunk), RAW_BLOCK):
            block = view[offset : offset + RAW_BLOCK]
            written += len(block)
            header = ((len(block) << 3) | (written == length)).to_bytes(3, "little")
            for piece in (header, block):
                digest.update(piece)
                out.write(piece)


def _padded_layout(version: str, arch: str, size: int) -> tuple[bytes, bytes, int, int] | None:
    """(head frame, tail frame, padding length, skippable frame length) for an archive of exactly size bytes;
    None when size is too small to pad."""
    head, tail = _linux_tar(version, arch, "", padded=tarfile.BLOCKSIZE)
    budget = size - len(_zstd(head)) - len(_zstd(tail)) - len(RAW_FRAME_HEADER) - 8
    length = budget * RAW_BLOCK // (RAW_BLOCK + 3) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE
    while length >= tarfile.BLOCKSIZE:
        head, tail = (_zstd(part) for part in _linux_tar(version, arch, "", padded=length))
        slack = size - len(head) - len(tail) - _raw_frame_size(length)
        if slack == 0 or slack >= 8:
            return head, tail, length, slack
        length -= tarfile.BLOCKSIZE
    return None


def padded_archive(version: str, arch: str, size: int) -> tuple[Path, str] | None:
    """The main Linux archive of exactly size bytes, built once into the cache: (path, sha256), or None when
    size is below the archive's natural size. PADDED_MEMBER then holds `padding` random bytes."""
    key = hashlib.sha256(
        f"{FORMAT}|{version}|{arch}|{size}|{baked_standin(version)}|{LINUX_PAYLOAD}".encode()
    ).hexdigest()[:24]
    target = cache_dir() / "ollama-releases" / f"ollama-linux-{arch}-{version}-{size}-{key}.tar.zst"
    sum_file = target.with_name(target.name + ".sha256")
    if target.is_file() and sum_file.is_file() and target.stat().st_size == size:
        return target, sum_file.read_text().strip()
    layout = _padded_layout(version, arch, size)
    if layout is None:
        return None
    head, tail, length, slack = layout
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as out:
        for piece in (head,):
            digest.update(piece)
            out.write(piece)
        _write_raw_frame(out, length, f"{version}|{arch}|{size}".encode(), digest)
        skippable = struct.pack("<II", ZSTD_SKIPPABLE_MAGIC, slack - 8) + b"\0" * (slack - 8) if slack else b""
        for piece in (tail, skippable):
            digest.update(piece)
            out.write(piece)
    os.replace(tmp, target)
    sum_file.write_text(digest.hexdigest() + "\n")
    return target, digest.hexdigest()


def parse_size(text: str | int | None) -> int:
    """Bytes from `1200000000`, `1.2G`, `800M`, `512Ki` (SI and binary suffixes); empty/None is 0."""
    if text is None or text == "":
        return 0
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size in bytes: {text!r} (e.g. 1200000000, 1.2G, 800M)")
    number, unit, binary = match.groups()
    power = "KMGT".index(unit.upper()) + 1 if unit else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


# -- macOS


def _app_tree(version: str) -> dict[str, tuple[bytes, int]]:
    """Ollama.app as build_darwin.sh leaves it before zipping (what we model of it)."""
    plist = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
        "\t<key>CFBundleExecutable</key>\n\t<string>Ollama</string>\n"
        "\t<key>CFBundleIdentifier</key>\n\t<string>com.electron.ollama</string>\n"
        # build_darwin.sh@v0.32.15 / @v0.16.3:150-151: plutil writes the version into the app's Info.plist.
        f"\t<key>CFBundleShortVersionString</key>\n\t<string>{version}</string>\n"
        f"\t<key>CFBundleVersion</key>\n\t<string>{version}</string>\n"
        "\t<key>LSMinimumSystemVersion</key>\n\t<string>14.0</string>\n"
        "</dict>\n</plist>\n"
    )
    app = baked_app(version).encode()
    files = {
        "Contents/Info.plist": (plist.encode(), 0o644),
        # The app's program: the lab's model of it (lab/macos/app.py), not a placeholder, so an installed
        # Ollama.app starts its own server as the real one does.
        "Contents/MacOS/Ollama": (app, 0o755),
        # The mock Squirrel.framework is a copy of the app binary (build_darwin.sh@v0.32.15:220-227,
        # @v0.16.3:140-147; its symlinks are not modelled), which the login item runs as `Squirrel background`.
        "Contents/Frameworks/Squirrel.framework/Versions/A/Squirrel": (app, 0o755),
        # The login item SMAppService registers, copied from app/darwin/Ollama.app by build_darwin.sh@v0.32.15:208
        # (identical at v0.16.3).
        "Contents/Library/LaunchAgents/com.ollama.ollama.plist": (LOGIN_ITEM_PLIST.encode(), 0o644),
    }
    for path in darwin_resources(version):
        files[f"Contents/Resources/{path}"] = (_file_content(version, path, "darwin"), _mode(path))
    return files


#: app/darwin/Ollama.app/Contents/Library/LaunchAgents/com.ollama.ollama.plist@v0.32.15 (same at v0.16.3), verbatim.
LOGIN_ITEM_PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>com.ollama.ollama</string>
    <key>BundleProgram</key>
\t<string>Contents/Frameworks/Squirrel.framework/Versions/A/Squirrel</string>
    <key>ProgramArguments</key>
    <array>
        <string>Contents/Frameworks/Squirrel.framework/Versions/A/Squirrel</string>
        <string>background</string>
    </array>
    <key>RunAtLoad</key>
    <true/>
    <key>LimitLoadToSessionType</key>
\t<string>Aqua</string>
\t<key>POSIXSpawnType</key>
\t<string>Interactive</string>
\t<key>LSUIElement</key>
\t<true/>
\t<key>LSBackgroundOnly</key>
\t<false/>
</dict>
</plist>"""
APP_SOURCE = Path(__file__).parent / "macos" / "app.py"


def baked_app(version: str) -> str:
    """The lab's Ollama.app program (lab/macos/app.py) with VERSION set, as the release build bakes it in."""
    source, count = re.subn(r'^VERSION = ".*"$', f'VERSION = "{version}"', APP_SOURCE.read_text(), count=1,
                            flags=re.MULTILINE)
    if count != 1:
        raise RuntimeError(f"no VERSION line in {APP_SOURCE}")
    return source


def darwin_zip(version: str) -> bytes:
    """Ollama-darwin.zip as `ditto -c -k --norsrc --keepParent dist/Ollama.app` makes it
    (build_darwin.sh@v0.32.15:257): everything under a top-level Ollama.app/, directories as entries, Unix modes
    kept (so `ditto -x -k` or unzip restore an executable Contents/Resources/ollama)."""
    files = _app_tree(version)
    directories = {"/".join(p.split("/")[:d]) + "/" for p in files for d in range(1, p.count("/") + 1)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # Depth first, a directory before what it holds, as ditto walks the tree.
        for name in ["", *sorted(directories | set(files))]:
            info = zipfile.ZipInfo(f"Ollama.app/{name}", ZIP_DATE)
            info.create_system = 3
            if name in files:
                data, mode = files[name]
                info.external_attr, info.compress_type = (0o100000 | mode) << 16, zipfile.ZIP_DEFLATED
            else:
                data, info.external_attr = b"", (0o40755 << 16) | 0x10
            archive.writestr(info, data)
    return buffer.getvalue()


def darwin_tgz(version: str) -> bytes:
    """ollama-darwin.tgz: `(cd Ollama.app/Contents/Resources; tar -cf - ollama llama-server llama-quantize *.so
    *.dylib *.metallib mlx_metal_v*/) | gzip -9` (build_darwin.sh@v0.32.15:258; @v0.16.3:181 without the 0.30
    additions): bare names. The owner is the macOS runner's account (an assumption; bsdtar keeps it)."""
    paths = darwin_resources(version)
    top = [p for p in paths if "/" not in p]
    named = [p for p in ("ollama", "llama-server", "llama-quantize") if p in top]
    by_glob = [p for ext in (".so", ".dylib", ".metallib") for p in sorted(top) if p.endswith(ext)]
    components = named + by_glob + sorted({p.split("/")[0] for p in paths if "/" in p})
    tar = io.BytesIO()
    owner = (501, "runner", 20, "staff")
    for name, is_dir in _tar_order(paths, components):
        if is_dir:
            tar.write(_tar_header(name, True, 0, 0o755, owner, tarfile.USTAR_FORMAT))
            continue
        data = _file_content(version, name, "darwin")
        tar.write(_tar_header(name, False, len(data), _mode(name), owner, tarfile.USTAR_FORMAT)
                  + data + _block_pad(len(data)))
    tar.write(_tar_end(tar.tell()))
    return gzip.compress(tar.getvalue(), compresslevel=9, mtime=0)


# -- the release


def release_artifacts(version: str, arches: tuple[str, ...] = OLLAMA_ARCHES) -> dict[str, bytes]:
    """File name -> bytes for every artifact of one release (small archives; sha256sum.txt aside)."""
    artifacts = {}
    for artifact in _artifacts(version, arches):
        if artifact.kind == "linux":
            suffix = artifact.name.removeprefix(f"ollama-linux-{artifact.arch}").removesuffix(".tar.zst")
            data = linux_archive(version, artifact.arch, suffix)
        elif artifact.kind == "darwin-zip":
            data = darwin_zip(version)
        elif artifact.kind == "darwin-tgz":
            data = darwin_tgz(version)
        elif artifact.kind == "install.sh":
            data = INSTALL_SH.encode()
        else:
            # A placeholder, not the real file: see ARTIFACTS.
            data = f"placeholder {artifact.name} of ollama {version} (not modelled by the lab; {artifact.source})\n"
            data = data.encode()
        artifacts[artifact.name] = data
    return artifacts


def sha256sum_text(sums: dict[str, str]) -> str:
    """sha256sum.txt as the release job writes it: `find . -type f -not -name 'sha256sum.txt' | xargs sha256sum`
    in dist/ (release.yaml@v0.32.15:767), so `<hex>  ./<file>`; sorted here (find's order is the directory's)."""
    return "".join(f"{digest}  ./{name}\n" for name, digest in sorted(sums.items()))


def build_ollama_release(
    root: Path, version: str, arches: tuple[str, ...] = OLLAMA_ARCHES, release_size: int = 0
) -> Path:
    """Write one release under root (skipped when the same content was already built there). release_size > 0
    makes each main Linux archive exactly that many bytes (see padded_archive), linked from the cache."""
    target = ollama_release_dir(root, version)
    stamp = target / ".build-fingerprint"
    fingerprint = hashlib.sha256(
        f"{FORMAT}|{baked_standin(version)}|{arches}|{release_size}|{ARTIFACTS}|{LINUX_PAYLOAD}|"
        f"{DARWIN_RESOURCES}|{INSTALL_SH}|{baked_app(version)}".encode()
    ).hexdigest()
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    target.mkdir(parents=True, exist_ok=True)
    artifacts = release_artifacts(version, arches)
    sums = {}
    for name, data in artifacts.items():
        arch = name.removeprefix("ollama-linux-").removesuffix(".tar.zst")
        padded = padded_archive(version, arch, release_size) if release_size and arch in OLLAMA_ARCHES else None
        if padded:
            _link_or_copy(padded[0], target / name)
            sums[name] = padded[1]
        else:
            write_atomically(target / name, data)
            sums[name] = hashlib.sha256(data).hexdigest()
    for stale in target.iterdir():  # files of an earlier layout (e.g. the Linux .tgz the lab once served)
        if not stale.name.startswith(".") and stale.name not in artifacts and stale.name != "sha256sum.txt":
            stale.unlink()
    write_atomically(target / "sha256sum.txt", sha256sum_text(sums).encode())
    stamp.write_text(fingerprint)
    return target


def _link_or_copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)



# ----------------------------------------------------------------------------------------------- Claude Code


def claude_code_package(platform_name: str) -> str:
    return f"{CLAUDE_CODE_SCOPE}/claude-code-{platform_name}"


def claude_code_tarball(version: str = CLAUDE_CODE_VERSION, platform_name: str = "linux-x64") -> Path:
    """The pinned platform package from `npm pack`, fetched once into the cache."""
    target = cache_dir() / "npm" / f"anthropic-ai-claude-code-{platform_name}-{version}.tgz"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        subprocess.run(
            ["npm", "pack", f"{claude_code_package(platform_name)}@{version}", "--pack-destination", scratch],
            check=True,
            capture_output=True,
        )
        (packed,) = Path(scratch).glob("*.tgz")
        os.replace(packed, target)
    return target


def host_platform() -> str:
    """Claude Code's platform name for this machine."""
    return {"x86_64": "linux-x64", "aarch64": "linux-arm64", "arm64": "linux-arm64"}[platform.machine()]


def claude_cli_path(version: str = CLAUDE_CODE_VERSION) -> Path:
    """The native `claude` executable of the pinned version for this machine, unpacked once from the cache."""
    target = cache_dir() / "claude-code" / version / host_platform() / "claude"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(claude_code_tarball(version, host_platform())) as tar:
        member = tar.extractfile("package/claude")
        tmp = target.with_name(".claude.tmp")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(member, out)
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target
