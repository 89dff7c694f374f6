"""Disk cache of frozen SAM image embeddings (see ``docs/sam_cache.md``).

Layout::

    <dir>/<encoder fingerprint>/encoder.json                      what the fingerprint covers
    <dir>/<encoder fingerprint>/<compute mode>/<k[:2]>/<k>.safetensors   one (C, h, w) embedding

``k`` is the sha256 of the exact encoder input of one image (its bytes, dtype and shape:
image content + preprocessing); the fingerprint is the sha256 of the encoder's weights
and configuration; the compute mode names the autocast state. A change of any of them
makes a new path, so a stale entry is never read. Entries are written atomically
(temporary file + rename), so ranks and processes writing the same key concurrently only
replace a complete file by an identical one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import os.path as osp
from typing import Any, Callable, Optional

import torch
from mmengine.logging import print_log
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lisakit.utils.io import atomic_write, dump_json_atomic

#: Bump when the key or file format changes: old entries then live in other folders.
CACHE_FORMAT_VERSION = 1
#: Tensor name inside each ``.safetensors`` entry.
ENTRY_TENSOR = 'embedding'
ENTRY_SUFFIX = '.safetensors'
#: Characters of the key used as a sub-folder (256 folders keep listings short).
SHARD_CHARS = 2
#: Images looked up between two hit/miss log lines.
DEFAULT_LOG_INTERVAL = 1000
ENCODER_INFO_FILE = 'encoder.json'


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The raw bytes of a tensor (any dtype, bfloat16 included), on CPU."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def _update(digest, tensor: torch.Tensor) -> None:
    """Hash dtype, shape and bytes, so equal bytes of another dtype/shape differ."""
    digest.update(f'{tensor.dtype}{tuple(tensor.shape)}'.encode())
    digest.update(_tensor_bytes(tensor))


def image_key(image: torch.Tensor) -> str:
    """sha256 of one encoder input (3, S, S): content, preprocessing, dtype and shape."""
    digest = hashlib.sha256()
    _update(digest, image)
    return digest.hexdigest()


def module_fingerprint(module: nn.Module, config: dict) -> str:
    """sha256 of a module's ``state_dict`` (names, dtypes, shapes, bytes) and ``config``.

    Args:
        module: The encoder whose weights are hashed.
        config: JSON-serializable settings that change its output (architecture, ...).

    Raises:
        ValueError: If a weight is empty: a shard of a parameter-sharding strategy
            (FSDP outside its forward, ZeRO-3) would give each rank its own fingerprint.
    """
    digest = hashlib.sha256()
    header = dict(format=CACHE_FORMAT_VERSION, config=config)
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        if tensor.numel() == 0:
            raise ValueError(
                f'SAM embedding cache: the encoder weight {name!r} is empty here (sharded '
                'by FSDP / ZeRO-3?), so it cannot be fingerprinted; fill the cache first '
                'with tools/misc/precompute_sam_cache.py or set model.sam_encoder.cache=None.'
            )
        digest.update(name.encode())
        _update(digest, tensor)
    return digest.hexdigest()


def compute_mode(device_type: str) -> str:
    """Name of the numerics the encoder runs with: autocast on/off and its dtype."""
    if torch.is_autocast_enabled(device_type):
        dtype = str(torch.get_autocast_dtype(device_type)).replace('torch.', '')
        return f'autocast_{dtype}'
    return 'no_autocast'


def build_embedding_cache(cache: Optional[dict], frozen: bool) -> Optional[SAMEmbeddingCache]:
    """The encoder's ``SAMEmbeddingCache`` from its ``cache`` arguments (``None``: none).

    Raises:
        ValueError: ``cache`` is set on a trained (``frozen=False``) encoder.
    """
    if cache is None:
        return None
    if not frozen:
        raise ValueError(
            'model.sam_encoder.cache is set but model.sam_encoder.frozen=False: the '
            'features of a trained encoder change every step and cannot be cached; '
            'set frozen=True or cache=None.'
        )
    return SAMEmbeddingCache(**cache)


class SAMEmbeddingCache:
    """Per-image SAM embeddings on disk, keyed by input bytes and encoder fingerprint.

    Args:
        dir: Root folder of the cache (created on first write); shared by every
            encoder and preprocessing, which get separate sub-folders.
        log_interval: Log the hit/miss counts every this many looked-up images
            (``0``: never; read :attr:`hits` / :attr:`misses` instead).

    Attributes:
        hits: Images whose embedding was read from disk.
        misses: Images whose embedding was computed (and written).
    """

    def __init__(self, dir: str, log_interval: int = DEFAULT_LOG_INTERVAL) -> None:
        if not isinstance(dir, str) or not dir:
            raise ValueError(
                f'model.sam_encoder.cache.dir={dir!r}; expected a folder path such as '
                "cache=dict(dir='work_dirs/sam_cache')."
            )
        self.root = dir
        self.log_interval = log_interval
        self.hits = 0
        self.misses = 0
        self._write_failed = False

    def folder(self, fingerprint: str, mode: str) -> str:
        """Folder holding the entries of one encoder fingerprint and compute mode."""
        return osp.join(self.root, fingerprint, mode)

    def describe(self, fingerprint: str, info: dict) -> None:
        """Write ``encoder.json`` (what the fingerprint covers) once per fingerprint."""
        path = osp.join(self.root, fingerprint, ENCODER_INFO_FILE)
        if not osp.exists(path):
            self._guard_write(
                path, lambda: dump_json_atomic(dict(info, format=CACHE_FORMAT_VERSION), path)
            )

    def path(self, folder: str, key: str) -> str:
        """File of one entry."""
        return osp.join(folder, key[:SHARD_CHARS], key + ENTRY_SUFFIX)

    def embed(
        self,
        images: torch.Tensor,
        encode: Callable[[torch.Tensor], torch.Tensor],
        folder: str,
    ) -> torch.Tensor:
        """Embeddings of ``images``, read from disk where cached, else encoded and stored.

        Args:
            images: (B, 3, S, S) encoder inputs.
            encode: The encoder: (m, 3, S, S) -> (m, C, h, w); called once on the misses.
            folder: :meth:`folder` of the current encoder and compute mode.

        Returns:
            (B, C, h, w) embeddings in the encoder's output dtype, on ``images.device``.
        """
        host = images.detach().cpu()  # one device->host copy for all keys
        keys = [image_key(img) for img in host]
        found = [self._read(self.path(folder, k), images.device) for k in keys]
        missing = [i for i, emb in enumerate(found) if emb is None]
        if missing:
            computed = encode(images[missing])  # (m, C, h, w)
            for i, emb in zip(missing, computed):
                found[i] = emb
                self._write(self.path(folder, keys[i]), emb)
        self._count(len(keys) - len(missing), len(missing))
        return torch.stack(found)  # (B, C, h, w)

    def _read(self, path: str, device: torch.device) -> Optional[torch.Tensor]:
        if not osp.exists(path):
            return None
        try:
            return load_file(path)[ENTRY_TENSOR].to(device)
        except (OSError, SafetensorError, KeyError) as err:
            print_log(
                f'SAM embedding cache: unreadable entry {path} ({err}); recomputing it.',
                logger='current',
                level=logging.WARNING,
            )
            with contextlib.suppress(FileNotFoundError):  # another rank may remove it too
                os.remove(path)
            return None

    def _write(self, path: str, embedding: torch.Tensor) -> None:
        if osp.exists(path):  # another rank or process wrote it meanwhile
            return
        tensors = {ENTRY_TENSOR: embedding.detach().cpu().contiguous()}
        self._guard_write(path, lambda: atomic_write(path, lambda tmp: save_file(tensors, tmp)))

    def _guard_write(self, path: str, write: Callable[[], None]) -> None:
        """Run ``write``; a failure (full disk, read-only folder) warns once, never raises."""
        try:
            write()
        except OSError as err:  # a full disk slows training down but must not stop it
            if not self._write_failed:
                print_log(
                    f'SAM embedding cache: cannot write {path} ({err}); embeddings are '
                    'computed as without a cache until writing works again.',
                    logger='current',
                    level=logging.WARNING,
                )
            self._write_failed = True

    def _count(self, hits: int, misses: int) -> None:
        before = (self.hits + self.misses) // max(self.log_interval, 1)
        self.hits += hits
        self.misses += misses
        after = (self.hits + self.misses) // max(self.log_interval, 1)
        if self.log_interval > 0 and after > before:
            print_log(f'SAM embedding cache: {self.summary()}', logger='current')

    def summary(self) -> str:
        """``'H hits, M misses (P% hits) in ROOT'``."""
        total = max(self.hits + self.misses, 1)
        return (
            f'{self.hits} hits, {self.misses} misses ({100 * self.hits / total:.1f}% hits) '
            f'in {self.root}'
        )


class CachedEncoderMixin:
    """The fingerprint and cache look-up of a SAM image encoder (put before ``BaseModule``).

    The encoder sets ``self.cache`` (:func:`build_embedding_cache`), ``self._identity``
    (its config, hashed with the weights) and ``self._fingerprint = None``, and may
    override :attr:`CACHE_LABEL` and :meth:`_fingerprinted_module`.
    """

    #: How the log line names the cache.
    CACHE_LABEL = 'SAM embedding cache'

    def _fingerprinted_module(self) -> nn.Module:
        """The module whose weights the fingerprint hashes."""
        return self  # type: ignore[return-value]

    def cached_encode(self, images: torch.Tensor, encode: Callable[[torch.Tensor], Any]) -> Any:
        """``encode(images)``, read from / written to the cache where one is set."""
        if self.cache is None:
            return encode(images)
        folder = self.cache.folder(self.fingerprint, compute_mode(images.device.type))
        return self.cache.embed(images, encode, folder)

    @property
    def fingerprint(self) -> str:
        """sha256 of the encoder weights and config; computed once, reset when the
        weights are loaded or converted (``load_state_dict``, ``.to(dtype)``)."""
        if self._fingerprint is None:
            self._fingerprint = module_fingerprint(self._fingerprinted_module(), self._identity)
            if self.cache is not None:
                self.cache.describe(self._fingerprint, self._identity)
                print_log(
                    f'{self.CACHE_LABEL}: {self.cache.root}/{self._fingerprint}',
                    logger='current',
                )
        return self._fingerprint

    def reset_fingerprint(self) -> None:
        """Hash the weights again on the next forward (after changing them in place)."""
        self._fingerprint = None

    def _apply(self, fn, *args, **kwargs):
        self.reset_fingerprint()  # dtype conversions change the weights
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.reset_fingerprint()
        super()._load_from_state_dict(*args, **kwargs)
