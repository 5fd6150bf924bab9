"""Where cache files live: a local folder or an Azure Blob container, behind one interface.

Both backends offer the same optimistic concurrency as Blob Storage: ``get`` returns the bytes
with an ETag, and ``put`` can be made conditional on the object being unchanged
(``if_match``) or absent (``if_none_match``). A write that loses such a race raises
:class:`PreconditionFailedError`; the caller re-reads and merges. Local writes are atomic (a
temporary file in the same folder, fsync, ``os.replace``), so a process killed mid-write leaves
the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tradetower.errors import TradeTowerError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

try:  # POSIX: serialise conditional writes between processes with an advisory lock
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; atomic replace still holds
    fcntl = None  # type: ignore[assignment]

DEFAULT_CONTAINER = "historical-data"
TEMP_SUFFIX = ".tmp"


class StoreError(TradeTowerError):
    """The cache's storage failed or is misconfigured (unreachable, refused, bad URL)."""

    code = "HISTORY_STORE_ERROR"


class PreconditionFailedError(StoreError):
    """A conditional write lost a race: the object changed (or appeared) since it was read."""

    code = "HISTORY_PRECONDITION_FAILED"


@dataclass(frozen=True, slots=True)
class StoredObject:
    data: bytes
    etag: str


class ObjectStore(Protocol):
    """Keys are ``/``-separated paths relative to the store's root."""

    description: str

    def get(self, key: str) -> StoredObject | None:
        """The object's bytes and ETag, or ``None`` when absent."""
        ...

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        """Write ``data``; return the new ETag. ``if_match``: only if the ETag is unchanged;
        ``if_none_match``: only if absent. Either failing raises PreconditionFailedError."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; absent is fine."""
        ...


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"bad cache key {key!r}")


class LocalStore:
    """A folder on disk. ETags are file identity plus modification time and size: every
    ``os.replace`` creates a new inode, so any write changes the ETag."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.description = f"local folder {self.root}"

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    @staticmethod
    def _etag(stat: os.stat_result) -> str:
        return f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"'

    def get(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            with path.open("rb") as fh:
                etag = self._etag(os.fstat(fh.fileno()))
                return StoredObject(fh.read(), etag)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc

    def current_etag(self, key: str) -> str | None:
        try:
            return self._etag(os.stat(self._path(key)))
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        """Hold an exclusive lock on ``folder`` so that check-then-replace is atomic."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
            try:
                with tmp.open("wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                with self._locked(path.parent):
                    current = self.current_etag(key)
                    if if_none_match and current is not None:
                        raise PreconditionFailedError(f"{key}: already exists")
                    if if_match is not None and current != if_match:
                        raise PreconditionFailedError(f"{key}: changed since it was read")
                    os.replace(tmp, path)
                    etag = self._etag(os.stat(path))
            finally:
                tmp.unlink(missing_ok=True)
            self._fsync_dir(path.parent)
            return etag
        except PreconditionFailedError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc}") from exc

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        """Make the rename itself durable (POSIX); harmless where unsupported."""
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def list(self, prefix: str = "") -> list[str]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / folder if folder else self.root  # walk only below the prefix
        if ".." in folder.split("/") or not start.is_dir():
            return []
        out = []
        for path in start.rglob("*"):
            if not path.is_file() or path.name.endswith(TEMP_SUFFIX):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                out.append(key)
        return sorted(out)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc}") from exc


class AzureBlobStore:
    """An Azure Blob container (or Azurite), same layout as the local folder."""

    def __init__(self, container_client: ContainerClient) -> None:
        self.container = container_client
        self.description = f"Azure Blob container {container_client.url.split('?')[0]}"

    def ensure_container(self) -> None:
        """Create the container when missing (needs account-level rights)."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            self.container.create_container()
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise StoreError(f"{self.description}: cannot create it ({_short(exc)})") from exc

    def get(self, key: str) -> StoredObject | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        _check_key(key)
        try:
            downloader = self.container.download_blob(key, max_concurrency=4)
            data = downloader.readall()
            return StoredObject(data, str(downloader.properties.etag))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StoreError(f"{self.description}: cannot read {key} ({_short(exc)})") from exc

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError

        _check_key(key)
        options: dict[str, Any] = {"overwrite": not if_none_match}
        if if_match is not None:
            options.update(etag=if_match, match_condition=MatchConditions.IfNotModified)
        try:
            props = self.container.get_blob_client(key).upload_blob(data, **options)
            return str(props["etag"])
        except (ResourceModifiedError, ResourceExistsError) as exc:
            raise PreconditionFailedError(f"{key}: changed since it was read") from exc
        except AzureError as exc:
            if getattr(exc, "status_code", None) == 412:
                raise PreconditionFailedError(f"{key}: changed since it was read") from exc
            raise StoreError(f"{self.description}: cannot write {key} ({_short(exc)})") from exc

    def list(self, prefix: str = "") -> list[str]:
        from azure.core.exceptions import AzureError

        try:
            return sorted(self.container.list_blob_names(name_starts_with=prefix or None))
        except AzureError as exc:
            raise StoreError(f"{self.description}: cannot list ({_short(exc)})") from exc

    def delete(self, key: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        _check_key(key)
        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise StoreError(f"{self.description}: cannot delete {key} ({_short(exc)})") from exc


def _short(exc: Exception) -> str:
    """The first line of an Azure error (they carry the whole HTTP exchange after it)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def default_cache_dir() -> Path:
    """The per-user data folder (platformdirs), ``.../tradetower/history``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("tradetower", appauthor=False)) / "history"


def open_store(cache_dir: str | Path | None = None) -> ObjectStore:
    """The configured store.

    In order: an explicit ``cache_dir`` (``--cache-dir``); ``TRADETOWER_BLOB_URL`` (a container
    URL with a SAS token); ``TRADETOWER_BLOB_CONNECTION_STRING`` with ``TRADETOWER_BLOB_CONTAINER``
    (default ``historical-data``, created when missing); ``TRADETOWER_CACHE_DIR``; else the
    per-user data folder.
    """
    if cache_dir is not None and str(cache_dir) != "":
        return LocalStore(cache_dir)
    url = os.environ.get("TRADETOWER_BLOB_URL", "").strip()
    conn = os.environ.get("TRADETOWER_BLOB_CONNECTION_STRING", "").strip()
    if url or conn:
        from azure.storage.blob import ContainerClient

        try:
            if url:
                return AzureBlobStore(ContainerClient.from_container_url(url))
            name = os.environ.get("TRADETOWER_BLOB_CONTAINER", "").strip() or DEFAULT_CONTAINER
            store = AzureBlobStore(ContainerClient.from_connection_string(conn, name))
        except ValueError as exc:
            which = "TRADETOWER_BLOB_URL" if url else "TRADETOWER_BLOB_CONNECTION_STRING"
            raise StoreError(f"{which} is not usable: {exc}") from exc
        store.ensure_container()
        return store
    folder = os.environ.get("TRADETOWER_CACHE_DIR", "").strip()
    return LocalStore(folder or default_cache_dir())
