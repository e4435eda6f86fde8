"""Frames as Ray tasks: :class:`RayCluster` is a :class:`nzip.frames.FrameCluster`.

The driver (the process that reads the input) keeps everything that is
sequential: cutting frames, the long-match search, the container, and
putting long matches back.  Each task codes or decodes one frame with
:func:`nzip.frames.encode_frame` or :func:`nzip.frames.decode_frame`; it is
sent the model's identifier and digest (a worker resolves and caches the
model itself) and the frame's bytes, and returns the frame's bytes.  At
most ``frames_at_once`` frames are in flight, which bounds memory on both
sides; results are taken in frame order.
"""

from __future__ import annotations

import socket
from typing import Any

from ..errors import NzipError
from ..frames import FrameItem, decode_frame, encode_frame
from ..models import Model, resolve


class ClusterError(NzipError):
    """The cluster could not be reached, or a task failed for a reason of its own."""


_MODELS: dict[tuple[str, bytes], Model] = {}  # per worker process: models resolved once


def _model(name: str, digest: bytes) -> Model:
    key = (name, digest)
    if key not in _MODELS:
        _MODELS[key] = resolve(name, digest)
    return _MODELS[key]


def _encode_task(name: str, digest: bytes, raw: bytes, matches: Any, residual: bytes) -> bytes:
    return encode_frame(_model(name, digest), raw, 1, matches, residual)


def _decode_task(name: str, digest: bytes, item: FrameItem) -> Any:
    return decode_frame(_model(name, digest), item, 1)


def _check_reachable(address: str) -> None:
    """Fail at once on an address nobody answers (Ray itself retries for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # let Ray interpret it
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None


def _compress_task(data: bytes, level: int, model: tuple[str, bytes] | None, options: dict[str, Any]) -> bytes:
    from ..codec import compress  # the whole file: one frame, often a compact member

    return compress(data, level, model=_model(*model) if model else None, **options)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class RayCluster:
    """A connection to a Ray cluster that codes frames.

    ``address``: ``"auto"`` (a running cluster, as ``ray.init("auto")``),
    ``"local"`` (start one on this machine for as long as this object
    lives; ``num_cpus`` caps it), or a cluster address such as
    ``"ray://head:10001"``.  ``retries``: how often Ray reruns a task whose
    worker died.  If Ray is already initialised in this process, that
    connection is used and left open.
    """

    def __init__(
        self,
        address: str = "auto",
        *,
        num_cpus: int | None = None,
        frames_at_once: int | None = None,
        retries: int = 3,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ClusterError("--ray needs Ray: pip install 'nzip[ray]'") from None
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False, "logging_level": "ERROR"}
            try:
                if address == "local":
                    ray.init(num_cpus=num_cpus, **options)
                else:
                    _check_reachable(address)
                    ray.init(address=address, **options)
            except ClusterError:
                raise
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                if address == "auto" and isinstance(exc, ConnectionError):
                    raise ClusterError(
                        "no running Ray cluster found (start one with 'ray start --head', or use --ray local)"
                    ) from None
                raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {_first_line(exc)}") from None
            self._owned = True
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.frames_at_once = frames_at_once or 2 * self.cpus
        task = {"num_cpus": 1, "max_retries": retries}
        self._encode = ray.remote(**task)(_encode_task)
        self._decode = ray.remote(**task)(_decode_task)
        self._compress = ray.remote(**task)(_compress_task)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the cluster if this object started it (which ends its tasks too).

        Tasks are never cancelled one by one: in Ray 2.60, cancelling a task
        that is finishing at that moment can abort the driver ("Tried to
        complete task that was not pending").  After a failure the few
        tasks still in flight finish and their results are dropped; when the
        driver exits (Ctrl-C), Ray ends the tasks of its job.
        """
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False

    @staticmethod
    def _check_model(model: Model) -> None:
        try:
            resolve(model.name, model.digest)
        except NzipError as exc:
            raise ClusterError(
                f"model '{model.name}' cannot be used on a cluster: workers find models by name ({exc})"
            ) from None

    def _gather(self, refs: list[Any], first: int, doing: str) -> list[Any]:
        """The tasks' results in order; the first failure, with its frame, as one error."""
        results = []
        for i, ref in enumerate(refs):
            try:
                results.append(self._ray.get(ref))
            except self._ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, NzipError):
                    raise cause from None  # a damaged frame names itself
                raise ClusterError(
                    f"{doing} frame {first + i} failed on the cluster: {type(cause).__name__}: {_first_line(cause)}"
                ) from None
            except self._ray.exceptions.RayError as exc:
                raise ClusterError(f"{doing} frame {first + i} failed on the cluster: {_first_line(exc)}") from None
        return results

    def submit_file(self, data: bytes, level: int, model: Model | None, **options: Any) -> Any:
        """Start compressing a whole (small) input as one task; :meth:`result` gives its archive."""
        if model is not None:
            self._check_model(model)
        return self._compress.remote(data, level, (model.name, model.digest) if model else None, options)

    def result(self, ref: Any, what: str) -> bytes:
        """The archive of a :meth:`submit_file` task (``what`` names the input in errors)."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            raise ClusterError(f"compressing {what} failed on the cluster: {_first_line(cause)}") from None

    def encode(self, model: Model, items: list[tuple], first: int) -> list[bytes]:
        self._check_model(model)
        refs = [self._encode.remote(model.name, model.digest, raw, matches, res) for raw, matches, res in items]
        return self._gather(refs, first, "compressing")

    def decode(self, model: Model, items: list[FrameItem]) -> list:
        self._check_model(model)
        refs = [self._decode.remote(model.name, model.digest, item) for item in items]
        return self._gather(refs, items[0][2] if items else 0, "decompressing")
