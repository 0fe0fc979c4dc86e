"""System metrics of a run: CPU, memory, disk, network and GPUs, sampled in a background thread.

``start_run(log_system_metrics=True)`` starts a :class:`SystemMetricsMonitor` that, every
``interval`` seconds, logs one point of each metric under MLflow's names (``system/`` then):

==========================================  ==================================================
``cpu_utilization_percentage``              CPU use of the whole machine since the last sample
``system_memory_usage_megabytes``           memory in use (1 MB = 10^6 bytes, as MLflow)
``system_memory_usage_percentage``          the same, as a share of the total
``disk_usage_percentage``, ``_megabytes``   the root filesystem's use
``disk_available_megabytes``                its free space
``network_receive_megabytes``, ``network_transmit_megabytes``  bytes since the run started
``gpu_<i>_utilization_percentage``          per NVIDIA GPU, when ``pynvml`` (nvidia-ml-py)
``gpu_<i>_memory_usage_megabytes``,         is installed and finds one
``gpu_<i>_memory_usage_percentage``
==========================================  ==================================================

Values are averaged over ``samples_before_logging`` samples (network totals are not), rounded
to 0.1, and logged at steps 0, 1, 2… Needs psutil (``pip install 'gitml[system]'``); nothing of
this module is imported while the option is off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from gitml.core.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0  # seconds, MLflow's default
MAX_INTERVAL = 86400.0  # a day: longer waits overflow the thread timer's clock
INTERVAL_ENV = "GITML_SYSTEM_METRICS_SAMPLING_INTERVAL"
PREFIX = "system/"
_interval: float | None = None


def set_system_metrics_sampling_interval(seconds: float | None) -> None:
    """Seconds between samples for runs started from now on (None: back to the default, 10).

    Raises:
        BadInputError: not a positive number.
    """
    global _interval
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not 0 < seconds <= MAX_INTERVAL):
        raise BadInputError(f"the sampling interval is a number of seconds > 0 and at most {MAX_INTERVAL:g}, "
                            f"not {seconds!r}")
    _interval = None if seconds is None else float(seconds)


def sampling_interval() -> float:
    """The interval in force: :func:`set_system_metrics_sampling_interval`'s, else the environment's, else 10 s.

    Raises:
        BadInputError: ``GITML_SYSTEM_METRICS_SAMPLING_INTERVAL`` is not a positive number.
    """
    if _interval is not None:
        return _interval
    text = os.environ.get(INTERVAL_ENV)
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_INTERVAL:  # NaN and inf fail too
        raise BadInputError(f"{INTERVAL_ENV}={text!r} is not a number of seconds > 0 and at most {MAX_INTERVAL:g}")
    return value


class SystemMetricsMonitor:
    """Samples the machine every ``interval`` seconds and hands each average to ``record``.

    Args:
        record: called as ``record({name: value}, step)`` from the monitor's thread; names
            carry the ``system/`` prefix.
        interval: seconds between samples.
        samples_before_logging: samples averaged into one logged point.

    Raises:
        BadInputError: psutil is not installed.
    """

    def __init__(self, record: Callable[[dict[str, float], int], None], interval: float = DEFAULT_INTERVAL,
                 samples_before_logging: int = 1) -> None:
        try:
            import psutil
        except ImportError:
            raise BadInputError("system metrics need psutil: pip install 'gitml[system]'") from None
        self._psutil = psutil
        self._record, self.interval, self.samples = record, interval, max(1, int(samples_before_logging))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gitml-system-metrics", daemon=True)
        self._gpus = _nvidia_gpus()
        network = psutil.net_io_counters()
        self._net0 = (network.bytes_recv, network.bytes_sent) if network else (0, 0)
        psutil.cpu_percent()  # the first call only sets the baseline the next one measures from
        self.step = 0

    def start(self) -> None:
        """Start sampling in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread (a sample in progress is finished and logged)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for shutdown in self._gpus[1:]:
            shutdown()

    def sample(self) -> dict[str, float]:
        """One sample of every metric, without the prefix."""
        psutil = self._psutil
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(os.sep)
        values = {
            "cpu_utilization_percentage": psutil.cpu_percent(),
            "system_memory_usage_megabytes": memory.used / 1e6,
            "system_memory_usage_percentage": memory.used / memory.total * 100,
            "disk_usage_percentage": disk.percent,
            "disk_usage_megabytes": disk.used / 1e6,
            "disk_available_megabytes": disk.free / 1e6,
        }
        if self._gpus:
            values.update(self._gpus[0]())
        return values

    def _network(self) -> dict[str, float]:
        network = self._psutil.net_io_counters()
        if not network:
            return {}
        return {"network_receive_megabytes": round((network.bytes_recv - self._net0[0]) / 1e6, 1),
                "network_transmit_megabytes": round((network.bytes_sent - self._net0[1]) / 1e6, 1)}

    def _run(self) -> None:
        while not self._stop.is_set():
            taken: list[dict[str, float]] = []
            for _ in range(self.samples):
                if self._stop.wait(self.interval):
                    break
                try:
                    taken.append(self.sample())
                except Exception as exc:  # noqa: BLE001 - a failing probe must never stop the run
                    log.debug("system metrics sample failed: %s", exc)
            if not taken:
                continue
            points = {f"{PREFIX}{name}": round(sum(s.get(name, 0.0) for s in taken) / len(taken), 1)
                      for name in taken[-1]}
            points.update({f"{PREFIX}{name}": value for name, value in self._network().items()})
            try:
                self._record(points, self.step)
            except Exception as exc:  # noqa: BLE001 - a full disk ends the run's logging, not its work
                log.warning("system metrics stopped: %s", exc)
                return
            self.step += 1


def _nvidia_gpus() -> list[Callable]:
    """``[sample, shutdown]`` for the NVIDIA GPUs pynvml finds, or ``[]`` (no pynvml, no GPU)."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - pynvml.NVMLError: no driver, no device
        return []
    if not handles:
        return []

    def sample() -> dict[str, float]:
        values = {}
        for i, handle in enumerate(handles):
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            values[f"gpu_{i}_memory_usage_percentage"] = memory.used / memory.total * 100
            values[f"gpu_{i}_memory_usage_megabytes"] = memory.used / 1e6
            values[f"gpu_{i}_utilization_percentage"] = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        return values

    return [sample, pynvml.nvmlShutdown]
