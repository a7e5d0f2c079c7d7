"""The expiry timeline: certificates placed by their not_after on an axis from now to the horizon, as SVG
drawn here (no JavaScript). Values go through the template's escaping; only numbers are computed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from service.authority import CertificateListing

WIDTH = 760
LEFT = 180  # room for the names
RIGHT = 24
ROW = 22
TOP = 34
MAX_ROWS = 40


@dataclass(frozen=True)
class Mark:
    label: str
    serial: str
    x: float
    y: float
    days_left: float
    urgency: str  # soon (< 7 days), near (< 30 days), later


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    left: float
    right: float
    axis_y: float
    marks: tuple[Mark, ...]
    ticks: tuple[Tick, ...]
    hidden: int  # certificates past MAX_ROWS, listed in the table only


def build_timeline(items: Sequence[CertificateListing], now: dt.datetime, horizon: dt.timedelta) -> Timeline:
    ordered = sorted(items, key=lambda i: i.not_after)
    shown = ordered[:MAX_ROWS]
    span = WIDTH - LEFT - RIGHT
    seconds = max(horizon.total_seconds(), 1.0)

    def x_of(when: dt.datetime) -> float:
        fraction = min(max((when - now).total_seconds() / seconds, 0.0), 1.0)
        return round(LEFT + fraction * span, 1)

    marks = []
    for row, item in enumerate(shown):
        days = (item.not_after - now).total_seconds() / 86400
        urgency = "soon" if days < 7 else "near" if days < 30 else "later"
        label = item.cn if len(item.cn) <= 24 else item.cn[:23] + "…"
        marks.append(Mark(label, item.serial, x_of(item.not_after), TOP + 12 + row * ROW, round(days, 1), urgency))
    step = _tick_step(horizon)
    ticks = []
    at = dt.timedelta(0)
    while at < horizon:
        label = "now" if at == dt.timedelta(0) else f"+{at.days} d"
        ticks.append(Tick(x_of(now + at), label))
        at += step
    if horizon - (at - step) < step / 2 and len(ticks) > 1:
        ticks.pop()  # too close to the end for two labels
    ticks.append(Tick(x_of(now + horizon), f"+{horizon.days} d"))
    height = TOP + 12 + max(len(shown), 1) * ROW + 8
    return Timeline(WIDTH, height, LEFT, WIDTH - RIGHT, TOP, tuple(marks), tuple(ticks), len(ordered) - len(shown))


def _tick_step(horizon: dt.timedelta) -> dt.timedelta:
    days = max(horizon.days, 1)
    for step in (1, 7, 14, 30, 90):
        if days / step <= 8:
            return dt.timedelta(days=step)
    return dt.timedelta(days=180)
