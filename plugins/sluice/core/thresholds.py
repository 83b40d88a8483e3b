"""Thresholds of the per-batch checks, declared per stream in ``include/sources/<source>.yml``.

Each stream may carry a ``checks`` mapping; what it leaves out takes the platform
defaults (:data:`DEFAULTS`), and ``<check>: false`` turns a check off::

    streams:
      users:
        record_key: id
        checks:
          completeness: {columns: [email, created_at], warn_above: 0, error_above: 0.01}
          uniqueness: {error_above: 0, blocking: true}
          validity: {warn_above: 0, error_above: 0.05}
          timeliness: {warn_after: {count: 3, period: hour}, error_after: {count: 6, period: hour}}
          consistency: {error_above: 0, blocking: true}
          volume: {training_period: {count: 14, period: day}, detection_period: {count: 2, period: day},
                   anomaly_sensitivity: 3, min_training_batches: 8, severity: warn}

A figure above ``warn_above`` warns (an alert; the batch goes on), above ``error_above``
it is an error (an alert); an error of a check marked ``blocking: true`` also stops what
follows (the source's publish, so the transform waits). A declared check's bounds replace
the default ones whole (``blocking`` keeps its default unless given). Durations are written as dbt
writes freshness SLAs: ``{count: <whole number>, period: minute|hour|day}``.

Plain Python, read while the DAG folder is parsed (with the source declaration): a
malformed threshold fails there, naming the stream and the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: The per-batch checks a stream declares (freshness and totals across layers are declared in dbt).
STREAM_CHECKS = ("completeness", "uniqueness", "validity", "timeliness", "consistency", "volume")
PERIODS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
SEVERITIES = ("warn", "error")


class CheckConfigError(ValueError):
    """A threshold or an SLA is malformed, or names what does not exist."""


def parse_duration(value: Any, where: str) -> timedelta:
    """``{count: 6, period: hour}`` (dbt's freshness notation) as a timedelta."""
    usage = f"{where} must be {{count: <whole number above 0>, period: {'|'.join(PERIODS)}}}, not {value!r}"
    if not isinstance(value, Mapping) or set(value) - {"count", "period"}:
        raise CheckConfigError(usage)
    count, period = value.get("count"), value.get("period")
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0 or period not in PERIODS:
        raise CheckConfigError(usage)
    return count * PERIODS[period]


def describe_duration(delta: timedelta | float) -> str:
    """``13 h 5 min``, ``2 d 3 h``, ``45 s``: a lag or an SLA for people."""
    seconds = int(round(delta.total_seconds() if isinstance(delta, timedelta) else delta))
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [f"{days} d", f"{hours} h" if hours else ""]
    elif hours:
        parts = [f"{hours} h", f"{minutes} min" if minutes else ""]
    elif minutes:
        parts = [f"{minutes} min"]
    else:
        parts = [f"{secs} s"]
    return sign + " ".join(part for part in parts if part)


@dataclass(frozen=True)
class Threshold:
    """Bounds of one figure.

    :param warn_above: above this, the figure warns (None: never)
    :param error_above: above this, it is an error (None: never)
    :param blocking: an error stops what follows the check
    """

    warn_above: float | None = None
    error_above: float | None = None
    blocking: bool = False

    @property
    def compared(self) -> bool:
        return self.warn_above is not None or self.error_above is not None

    def judge(self, value: float) -> tuple[str, float | None]:
        """(status, the bound it was held to): ``error`` above error_above, ``warn`` above
        warn_above, else ``pass`` (held to the lowest bound)."""
        if self.error_above is not None and value > self.error_above:
            return "error", self.error_above
        if self.warn_above is not None and value > self.warn_above:
            return "warn", self.warn_above
        return "pass", self.warn_above if self.warn_above is not None else self.error_above

    def bounds(self, describe: Callable[[float], str] | None = None) -> str:
        """``warn above 0, error above 0.05`` (each bound written by ``describe``), for details."""
        describe = describe or (lambda bound: f"{bound:g}")
        parts = [
            f"{word} above {describe(bound)}"
            for word, bound in (("warn", self.warn_above), ("error", self.error_above))
            if bound is not None
        ]
        return ", ".join(parts) or "recorded only"


@dataclass(frozen=True)
class Completeness:
    """Null rates (0 to 1) of the columns a batch must fill."""

    columns: tuple[str, ...]
    threshold: Threshold


@dataclass(frozen=True)
class Volume:
    """A batch's row count against the stream's earlier batches, as a z-score (Elementary's terms).

    :param training_period: how far back earlier batches are taken as the expected range
    :param detection_period: the most recent span left out of that range (so an anomaly
        lasting a while does not become its own baseline)
    :param anomaly_sensitivity: how many standard deviations from the mean are an anomaly
    :param min_training_batches: fewer earlier batches than this: recorded, not compared
    :param severity: ``warn`` or ``error``, what an anomaly is
    :param blocking: an anomaly of severity ``error`` stops what follows
    """

    training_period: timedelta = timedelta(days=14)
    detection_period: timedelta = timedelta(days=2)
    anomaly_sensitivity: float = 3.0
    min_training_batches: int = 8
    severity: str = "warn"
    blocking: bool = False


@dataclass(frozen=True)
class StreamChecks:
    """Every per-batch check of one stream; None: turned off.

    Rates (completeness, validity) are fractions of the batch's rows, 0 to 1; uniqueness
    counts rows whose record key another row of the batch already has; consistency
    counts differences between the lake's partition and the warehouse's batch;
    timeliness holds seconds from the interval's end to the batch's landing.
    """

    completeness: Completeness | None = None
    uniqueness: Threshold | None = Threshold()
    validity: Threshold | None = Threshold(warn_above=0.0)
    timeliness: Threshold | None = Threshold(warn_above=3 * 3600.0, error_above=6 * 3600.0)
    consistency: Threshold | None = Threshold(error_above=0.0, blocking=True)
    volume: Volume | None = Volume()


#: What a stream gets for each check it does not declare.
DEFAULTS = StreamChecks()

_THRESHOLD_KEYS = {"warn_above", "error_above", "blocking"}
_KEYS = {
    "completeness": _THRESHOLD_KEYS | {"columns"},
    "uniqueness": _THRESHOLD_KEYS,
    "validity": _THRESHOLD_KEYS,
    "timeliness": {"warn_after", "error_after", "blocking"},
    "consistency": _THRESHOLD_KEYS,
    "volume": {
        "training_period",
        "detection_period",
        "anomaly_sensitivity",
        "min_training_batches",
        "severity",
        "blocking",
    },
}


def parse_checks(raw: Any, where: str) -> StreamChecks:
    """A stream's ``checks`` mapping over :data:`DEFAULTS`.

    :param where: names the stream in errors (``include/sources/shop.yml: stream 'orders'``)
    :raises CheckConfigError: an unknown check or key, a bound that is no number, a
        completeness check naming no column, a duration that does not parse
    """
    if raw is None:
        return DEFAULTS
    if not isinstance(raw, Mapping):
        raise CheckConfigError(f"{where}: checks must map check names ({', '.join(STREAM_CHECKS)}) to thresholds")
    if unknown := sorted(set(raw) - set(STREAM_CHECKS)):
        raise CheckConfigError(
            f"{where}: unknown check(s) {unknown}; a stream declares {', '.join(STREAM_CHECKS)}"
            " (freshness is declared in the dbt sources, totals across layers as dbt tests)"
        )
    values: dict[str, Any] = {}
    for name, spec in raw.items():
        here = f"{where}: check {name!r}"
        if spec is False or spec is None:
            values[name] = None
            continue
        if not isinstance(spec, Mapping):
            raise CheckConfigError(f"{here} must be a mapping of its thresholds, or false to turn it off")
        if unknown := sorted(set(spec) - _KEYS[name]):
            raise CheckConfigError(f"{here} has unknown key(s) {unknown}; it takes {sorted(_KEYS[name])}")
        values[name] = _PARSERS[name](spec, here)
    return dataclasses.replace(DEFAULTS, **values)


def _number(spec: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise CheckConfigError(f"{where}: {key} must be a number of at least 0, not {value!r}")
    return float(value)


def _flag(spec: Mapping[str, Any], where: str, default: bool = False) -> bool:
    value = spec.get("blocking", default)
    if not isinstance(value, bool):
        raise CheckConfigError(f"{where}: blocking must be true or false, not {value!r}")
    return value


def _threshold(spec: Mapping[str, Any], where: str, default: Threshold, rate: bool = False) -> Threshold:
    # the bounds a stream declares replace the default ones whole; blocking keeps its default
    warn, error = _number(spec, "warn_above", where), _number(spec, "error_above", where)
    for key, value in (("warn_above", warn), ("error_above", error)):
        if rate and value is not None and value > 1:
            raise CheckConfigError(f"{where}: {key} is a share of the batch's rows, 0 to 1, not {value!r}")
    if warn is not None and error is not None and warn > error:
        raise CheckConfigError(f"{where}: warn_above {warn:g} is above error_above {error:g}")
    return Threshold(warn, error, _flag(spec, where, default.blocking))


def _completeness(spec: Mapping[str, Any], where: str) -> Completeness:
    columns = spec.get("columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c.strip() for c in columns):
        raise CheckConfigError(f"{where} names no column: give columns: [<column>, ...], the columns a batch must fill")
    if "warn_above" not in spec and "error_above" not in spec:
        spec = {**spec, "error_above": 0}  # a required column: any null is an error
    return Completeness(tuple(columns), _threshold(spec, where, Threshold(), rate=True))


def _timeliness(spec: Mapping[str, Any], where: str) -> Threshold:
    bounds = {
        key: parse_duration(spec[key], f"{where}: {key}").total_seconds()
        for key in ("warn_after", "error_after")
        if spec.get(key) is not None
    }
    if not bounds:
        raise CheckConfigError(f"{where} needs warn_after or error_after, e.g. {{count: 3, period: hour}}")
    warn, error = bounds.get("warn_after"), bounds.get("error_after")
    if warn is not None and error is not None and warn > error:
        raise CheckConfigError(f"{where}: warn_after is longer than error_after")
    return Threshold(warn, error, _flag(spec, where))


def _volume(spec: Mapping[str, Any], where: str) -> Volume:
    default = DEFAULTS.volume or Volume()
    periods = {
        key: parse_duration(spec[key], f"{where}: {key}") if key in spec else getattr(default, key)
        for key in ("training_period", "detection_period")
    }
    sensitivity = _number(spec, "anomaly_sensitivity", where, default.anomaly_sensitivity)
    if not sensitivity:
        raise CheckConfigError(f"{where}: anomaly_sensitivity must be above 0 (standard deviations)")
    minimum = spec.get("min_training_batches", default.min_training_batches)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 2:
        raise CheckConfigError(f"{where}: min_training_batches must be a whole number of at least 2, not {minimum!r}")
    severity = spec.get("severity", default.severity)
    if severity not in SEVERITIES:
        raise CheckConfigError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return Volume(
        periods["training_period"],
        periods["detection_period"],
        sensitivity,
        minimum,
        severity,
        _flag(spec, where, default.blocking),
    )


_PARSERS = {
    "completeness": _completeness,
    "uniqueness": lambda spec, where: _threshold(spec, where, DEFAULTS.uniqueness or Threshold()),
    "validity": lambda spec, where: _threshold(spec, where, DEFAULTS.validity or Threshold(), rate=True),
    "timeliness": _timeliness,
    "consistency": lambda spec, where: _threshold(spec, where, DEFAULTS.consistency or Threshold()),
    "volume": _volume,
}
