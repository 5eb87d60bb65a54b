"""Training on several devices (``--devices all|N``) or several machines (``TF_CONFIG``).

:func:`make_strategy` turns the ``devices`` setting into a ``tf.distribute`` strategy, or into none
for one device (the plain path, unchanged). Under a strategy the *global* batch (``--batch-size``)
is split between the replicas, each computes its gradients, and the gradients are summed over the
replicas (Keras' TensorFlow optimizer all-reduces with SUM). So each replica's loss must be its
share of the loss one device would compute on the whole batch: :func:`replica_loss_parts` gives
that share for the tutorial's two kinds of loss, a sum over the batch (the localization loss) and
a mean over it (the classification loss).

Plain Python at import (TensorFlow is imported inside the functions), so the settings table can
use :func:`devices_argument` without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from training.core.errors import TrainingError
from training.core.inputs import parse_json

ALL_DEVICES = "all"
TF_CONFIG = "TF_CONFIG"
#: More devices than any machine has: a --devices value above it is a typo (or 99999999999999999999).
MAX_DEVICES = 1024
#: How long a worker waits between looking for the others, and after how long it says whom it waits for.
#: Without a GPU, the CPU is split into at most this many logical devices (or one per core, if more).
MAX_CPU_SPLIT = 8
WORKER_POLL_S = 0.5
WAITING_NOTE_AFTER_S = 3.0
WAITING_NOTE_EVERY_S = 30.0


def parse_devices(text: str | int) -> str | int:
    """``"all"`` or a whole number from 1 to MAX_DEVICES (as an int), from a ``--devices`` value; ValueError
    otherwise (one line, whatever was typed: a Unicode digit, twenty nines)."""
    value = str(text).strip().lower()
    if value == ALL_DEVICES:
        return ALL_DEVICES
    shown = value if len(value) <= 24 else value[:21] + "..."
    if not (value.isascii() and value.isdecimal()) or int(value) < 1:
        raise ValueError(f"devices must be 'all' or a whole number of at least 1, got {shown!r}")
    if len(value) > 5 or int(value) > MAX_DEVICES:
        raise ValueError(f"devices must be 'all' or at most {MAX_DEVICES}, got {shown}: no machine has that many")
    return int(value)


def devices_argument(text: str) -> str:
    """argparse type for ``--devices``: the value checked and written the one way (``"all"``, ``"2"``)."""
    try:
        return str(parse_devices(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster, as ``TF_CONFIG`` describes it."""

    workers: int  # machines (processes) that train together, the chief included
    task_type: str  # "chief" or "worker"
    task_index: int
    has_chief_task: bool = False  # the cluster names a "chief" apart from its workers
    members: tuple[Member, ...] = ()  # every process, this one included

    @property
    def me(self) -> Member | None:
        return next((m for m in self.members if (m.task_type, m.index) == (self.task_type, self.task_index)), None)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder: the ``chief`` task, else worker 0 (TensorFlow's rule)."""
        return self.task_type == "chief" or (self.task_index == 0 and not self.has_chief_task)


@dataclass(frozen=True)
class Member:
    """One process of the cluster: its task type, index and ``host:port`` address."""

    task_type: str
    index: int
    address: str

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def __str__(self) -> str:
        return f"{self.task_type} {self.index} ({self.address})"


def _address_problem(address: Any) -> str | None:
    """Why a cluster address is not ``"host:port"`` (port 1 to 65535), or None."""
    if not isinstance(address, str):
        return f"an address must be a \"host:port\" string, got {address!r}"
    host, colon, port = address.rpartition(":")
    if not colon or not host.strip("[]") or not (port.isascii() and port.isdecimal()):
        return f"an address must be \"host:port\", got {address!r} (no port?)"
    if not 1 <= int(port) <= 65535:
        return f"the port of {address!r} must be 1 to 65535"
    if any(c.isspace() for c in address) or ("/" in host):
        return f"an address must be \"host:port\", got {address!r}"
    return None


def read_cluster(environ: dict[str, str] | None = None) -> Cluster | None:
    """The cluster ``TF_CONFIG`` names, or None when it is unset or names a single worker.

    Plain JSON reading (no TensorFlow), so the trainer knows before TensorFlow starts whether this
    process is the chief, the one that owns the run folder; and every part is checked here, before
    TensorFlow sees it: valid JSON, ``cluster`` lists of ``"host:port"`` strings, ``task`` a type
    and an index that is in its list. A mistake is one TrainingError saying which part.
    """
    text = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        config = parse_json(text, max_depth=8)
    except ValueError as exc:
        raise TrainingError(f"{TF_CONFIG} is not valid JSON ({exc}); see the README's 'Several GPUs or machines'"
                            ) from None
    shown = text if len(text) <= 200 else text[:197] + "..."
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TrainingError(f"{TF_CONFIG} needs a \"cluster\" object (\"worker\": [\"host:port\", ...]) and a \"task\" "
                            f"object ({{\"type\": \"worker\", \"index\": 0}}), got {shown!r}")
    members = {name: cluster.get(name) or [] for name in ("chief", "worker")}
    if not all(isinstance(v, list) for v in members.values()) or set(cluster) - {"chief", "worker"}:
        raise TrainingError(f"{TF_CONFIG}: the cluster may list only \"chief\" and \"worker\" addresses, got "
                            f"{cluster!r}"[:300])
    if len(members["chief"]) > 1:
        raise TrainingError(f"{TF_CONFIG}: a cluster has at most one chief, got {len(members['chief'])}")
    seen: dict[str, str] = {}
    for name, addresses in members.items():
        for index, address in enumerate(addresses):
            problem = _address_problem(address)
            if problem:
                raise TrainingError(f"{TF_CONFIG}: cluster {name} {index}: {problem}")
            if address in seen:
                raise TrainingError(f"{TF_CONFIG}: {address} is listed twice ({seen[address]} and {name} {index})")
            seen[address] = f"{name} {index}"
    workers = len(members["chief"]) + len(members["worker"])
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker"):
        raise TrainingError(f"{TF_CONFIG}: task type must be \"worker\" (or \"chief\"), got {task_type!r}")
    if not isinstance(task_index, int) or isinstance(task_index, bool) or not (
            0 <= task_index < len(members[task_type])):
        raise TrainingError(f"{TF_CONFIG}: task index {task_index!r} is not one of the cluster's "
                            f"{len(members[task_type])} {task_type} entries (0 to {len(members[task_type]) - 1})")
    if workers < 2:
        return None
    listed = tuple(Member(name, index, address) for name, addresses in members.items()
                   for index, address in enumerate(addresses))
    return Cluster(workers=workers, task_type=task_type, task_index=task_index, has_chief_task=bool(members["chief"]),
                   members=listed)


def wait_for_workers(cluster: Cluster, emit: Callable[[str], None] | None = None,
                     poll_s: float = WORKER_POLL_S) -> None:
    """Wait, in Python, until every other member of the cluster is there, before TensorFlow starts its own
    server; Ctrl-C and SIGTERM end the wait at once with a KeyboardInterrupt naming the members still
    missing (``str()``: "waiting for worker 1 (10.0.0.2:12345) to join the cluster (TF_CONFIG)").

    TensorFlow's own wait happens inside one C++ call that holds the interpreter and swallows
    SIGTERM: a training waiting there for a worker that never comes ignored both for minutes.
    Here, each process listens on its own port meanwhile and says hello (its place in the cluster)
    to each other member's port; it goes on once it has greeted every other member and heard from
    each, so all go on together and TensorFlow's wait that follows is short. ``emit`` is told who is
    still missing after a few seconds, then every 30 s.
    """
    me = cluster.me
    if me is None:  # read_cluster always names this process's place; a Cluster made by hand may not
        return
    others = [m for m in cluster.members if m != me]
    listener = _listen(me)
    greeted: set[str] = set()
    heard: set[str] = set()
    started = time.monotonic()
    next_note = started + WAITING_NOTE_AFTER_S
    missing = list(others)
    try:
        while True:
            heard |= _hellos(listener)
            for member in others:
                if _key(member) not in greeted and _greet(member, me):
                    greeted.add(_key(member))
            missing = [m for m in others if _key(m) not in greeted or _key(m) not in heard]
            if not missing:
                break
            now = time.monotonic()
            if emit is not None and now >= next_note:
                emit(f"waiting for {_names(missing)} to join ({now - started:.0f} s so far, {TF_CONFIG}); start the "
                     "same command there, or stop with Ctrl-C")
                next_note = now + WAITING_NOTE_EVERY_S
            time.sleep(poll_s)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"waiting for {_names(missing)} to join the cluster ({TF_CONFIG})") from None
    finally:
        listener.close()


_HELLO = b"facetracker-hello "


def _key(member: Member) -> str:
    return f"{member.task_type} {member.index}"


def _names(members: list[Member]) -> str:
    return ", ".join(str(m) for m in members) or "nobody"


def _listen(me: Member) -> socket.socket:
    """A plain TCP listener on this member's port while it waits (closed before TensorFlow binds it)."""
    problem: OSError | None = None
    for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "")):
        try:
            listener = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            problem = problem or exc
            continue
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            listener.bind((address, me.port))
            listener.listen(16)
            listener.setblocking(False)
            return listener
        except OSError as exc:
            listener.close()
            problem = exc
            if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                break
    reason = problem.strerror if problem is not None and problem.strerror else str(problem)
    raise TrainingError(f"{TF_CONFIG}: this process is {me}, but it cannot listen on port {me.port} ({reason}): "
                        "another training or program may hold it; free it or change the port")


def _hellos(listener: socket.socket) -> set[str]:
    """The members that said hello on our listener since the last look."""
    heard = set()
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # BlockingIOError: nobody more is waiting
            return heard
        with connection:
            connection.settimeout(0.5)
            data = b""
            with contextlib.suppress(OSError):
                while len(data) < 256 and not data.endswith(b"\n"):
                    chunk = connection.recv(256)
                    if not chunk:
                        break
                    data += chunk
        if data.startswith(_HELLO):
            heard.add(data[len(_HELLO):].strip().decode("ascii", "replace"))


def _greet(member: Member, me: Member) -> bool:
    """Say hello (our place in the cluster) on ``member``'s port; whether it was delivered."""
    try:
        with socket.create_connection((member.host, member.port), timeout=1.0) as connection:
            connection.sendall(_HELLO + _key(me).encode("ascii") + b"\n")
            connection.shutdown(socket.SHUT_WR)
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _signals_reach_python() -> Iterator[None]:
    """SIGINT and SIGTERM end the process while TensorFlow sets up a multi-worker strategy (one C++ call
    that Python signal handlers cannot interrupt), and this process's own handlers are put back after:
    TensorFlow installs a SIGTERM handler of its own there that swallows the signal."""
    names = [n for n in ("SIGINT", "SIGTERM") if hasattr(signal, n)]
    if not _on_main_thread():
        yield
        return
    previous = {n: signal.getsignal(getattr(signal, n)) for n in names}
    for n in names:
        signal.signal(getattr(signal, n), signal.SIG_DFL)
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler if handler is not None else signal.SIG_DFL)


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def make_strategy(devices: str | int = "1", batch_size: int | None = None,
                  emit: Callable[[dict], None] | None = None) -> tuple[Any | None, str]:
    """The ``tf.distribute`` strategy for ``devices`` and a line saying what it trains on.

    * one device (``1``, or ``all`` where there is one): ``None``, the plain single-device path;
    * several GPUs: ``MirroredStrategy`` over the first N (``all``: every one);
    * no GPU and N > 1: the CPU split into N logical devices under ``MirroredStrategy`` (to try the
      path; it is not faster, the devices share the same cores). TensorFlow allows the split only
      before it has set up its devices in this process, so call this first;
    * ``TF_CONFIG`` naming several workers: ``MultiWorkerMirroredStrategy``, each worker on its own
      first N GPUs (``all``: every one) or its CPU.

    With a cluster, every other worker is waited for first (:func:`wait_for_workers`: Ctrl-C and
    SIGTERM end that wait); ``emit`` gets a warning event saying whom it waits for.

    Raises TrainingError for a bad value, N above the devices present or above ``batch_size`` (each
    device needs a picture of every step), or a split asked too late.
    """
    try:
        count = parse_devices(devices)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    cluster = read_cluster()
    if isinstance(count, int) and batch_size is not None and batch_size < count:
        raise TrainingError(f"--batch-size {batch_size} with --devices {count}: each device needs at least one picture "
                            f"of every step; use --batch-size {count} or more (it is the whole step's batch)")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        used = len(gpus) if count == ALL_DEVICES else count
        if used > len(gpus):
            raise TrainingError(f"--devices {count}: this machine has {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} "
                                f"({', '.join(g.name for g in gpus)}); use --devices all or at most {len(gpus)}")
    else:
        used = 1 if count == ALL_DEVICES else count
        most = max(MAX_CPU_SPLIT, os.cpu_count() or 1)
        if cluster is None and used > most:
            raise TrainingError(f"--devices {count}: this machine has no GPU, and its CPU is split into at most {most} "
                                "logical devices (to try the several-device path; it is not faster): use --devices 2")
    if batch_size is not None and batch_size < used:
        raise TrainingError(f"--batch-size {batch_size} with {used} devices: each device needs at least one picture of "
                            f"every step; use --batch-size {used} or more")

    if cluster is not None:
        if not gpus and used > 1:
            raise TrainingError(f"--devices {count} with {TF_CONFIG}: splitting the CPU is for trying several devices "
                                "on one machine; each worker of a cluster trains on its whole CPU: use --devices 1")
        if gpus and used < len(gpus):
            _show_only(tf, gpus[:used])
        from training.core.events import warning_event

        wait_for_workers(cluster, (lambda message: emit(warning_event(message))) if emit is not None else None)
        with _signals_reach_python():
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        where = f"{used} GPU{'s' if used > 1 else ''}" if gpus else "its CPU"
        role = "the chief" if cluster.is_chief else f"{cluster.task_type} {cluster.task_index}"
        return strategy, (f"{cluster.workers} workers (MultiWorkerMirroredStrategy from {TF_CONFIG}), each on {where}: "
                          f"{strategy.num_replicas_in_sync} replicas in all; this process is {role}")
    if used == 1:
        if count == ALL_DEVICES and not gpus:
            return None, "one device (--devices all found no GPU: the CPU)"
        return None, "one device"
    if gpus:
        names = [f"/gpu:{i}" for i in range(used)]
        return tf.distribute.MirroredStrategy(devices=names), f"{used} GPUs (MirroredStrategy)"
    _split_cpu(tf, used)
    names = [f"/cpu:{i}" for i in range(used)]
    strategy = tf.distribute.MirroredStrategy(devices=names, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return strategy, (f"the CPU split into {used} logical devices (MirroredStrategy; no GPU found: this shows the "
                      "several-device path, it is not faster)")


def _show_only(tf: Any, gpus: list) -> None:
    """Make only ``gpus`` visible to TensorFlow (possible only before it sets its devices up)."""
    try:
        tf.config.set_visible_devices(gpus, "GPU")
    except RuntimeError as exc:
        raise TrainingError(f"cannot limit training to {len(gpus)} GPUs: TensorFlow has already set up its devices "
                            f"in this process ({exc}); set CUDA_VISIBLE_DEVICES instead") from None


def _split_cpu(tf: Any, count: int) -> None:
    """Split the first CPU into ``count`` logical devices, or say why it cannot be done now."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return  # this process already split it so (a second run in the same process)
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        raise TrainingError(
            f"--devices {count}: cannot split the CPU into {count} logical devices: TensorFlow has already set up "
            f"its devices in this process ({have} CPU device{'s' if have != 1 else ''}). The split must come before "
            "TensorFlow's first computation: run the training in a fresh process (the command line and the Train "
            "tab do)") from None


def replica_loss_parts(class_loss: Any, regress_loss: Any, batch_size: Any) -> tuple[Any, Any, int]:
    """This replica's shares of the global batch's losses: ``(class_part, regress_part, replicas)``.

    ``class_loss`` is a mean over this replica's pictures, ``regress_loss`` a sum over them (the
    tutorial's losses). The gradients of the replicas are summed, so the parts must add up, over
    the replicas, to what one device computes on the whole batch: the sum as it is, and the mean
    weighted by this replica's share of the pictures, ``n_replica / n_global`` (exact for an uneven
    last batch too; a replica given no picture adds nothing). Keras' own ``1 / replicas`` scaling
    is right only for means: it would halve the localization loss on two devices.

    Outside a multi-replica step (one device, or Keras building the model) returns the losses as
    they are and ``replicas`` 1. Multiply a part by ``replicas`` for the value to log: the loss
    trackers average their replicas, which gives the global batch's loss.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return class_loss, regress_loss, 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return class_loss, regress_loss, 1
    local = tf.cast(batch_size, tf.float32)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
    share = tf.math.divide_no_nan(local, total)
    class_part = tf.where(local > 0, tf.cast(class_loss, tf.float32), 0.0) * share  # an empty mean is NaN
    regress_part = tf.where(local > 0, tf.cast(regress_loss, tf.float32), 0.0)
    return class_part, regress_part, replicas


def whole_replica_batches(batches: Any, replicas: int) -> Any:
    """``batches`` for ``fit`` under a strategy of ``replicas``: a last batch with fewer pictures than
    replicas is left out (a shorter last batch is kept, split unevenly).

    TensorFlow would hand some replica an empty batch, which the network cannot run on (a shape
    error inside the step); leaving out those few pictures for the epoch is the usual
    ``drop_remainder`` remedy, done only where it is needed. Anything that is not an indexable
    ``keras.utils.PyDataset`` (with ``len``) is returned as it is.
    """
    import keras

    if replicas <= 1 or not isinstance(batches, keras.utils.PyDataset) or len(batches) == 0:
        return batches
    last = batches[len(batches) - 1]
    if len(last[0]) >= replicas:
        return batches
    return _leave_out_last_class()(batches)


@functools.cache
def _leave_out_last_class() -> type:
    import keras

    class LeaveOutLast(keras.utils.PyDataset):
        """A PyDataset without its last batch; the rest (and epoch hooks) are the wrapped one's."""

        def __init__(self, inner: Any) -> None:
            super().__init__(workers=inner.workers, use_multiprocessing=inner.use_multiprocessing,
                             max_queue_size=inner.max_queue_size)
            self.inner = inner

        def __len__(self) -> int:
            return len(self.inner) - 1

        def __getitem__(self, index: int) -> Any:
            if not 0 <= index < len(self):
                raise IndexError(f"batch {index} out of range ({len(self)} batches)")
            return self.inner[index]

        def on_epoch_begin(self) -> None:
            self.inner.on_epoch_begin()

        def on_epoch_end(self) -> None:
            self.inner.on_epoch_end()

    return LeaveOutLast


def step_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """A training or evaluation step's logs, shaped so Keras can average them over the workers.

    Keras 3's TensorFlow trainer reduces each log of a multi-worker step with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on the scalars every metric gives
    ("Invalid reduction dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388).
    There, each log gets a length-1 axis, which that mean takes off again; elsewhere they are
    returned as they are (the epoch's logs never pass through here).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return logs
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {name: tf.reshape(value, (1,)) if value.shape.rank == 0 else value for name, value in logs.items()}
