"""Is the archive healthy? Per channel: polled recently, and not silent for too long."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.config.settings import Config
from storage.evidence import EvidenceState
from storage.models import ChannelStatus, age_of


def channel_problems(status: ChannelStatus, config: Config, now: datetime | None = None) -> list[str]:
    """What is wrong with one configured channel; empty when healthy."""
    now = now or datetime.now(UTC)
    channel = next((c for c in config.channels if c.name.lower() == status.username.lower()), None)
    if channel is None:
        return []  # archived earlier, no longer followed: not watched
    problems = []
    if status.last_sync_at is None:
        problems.append("never synced")
    elif (quiet := age_of(status.last_sync_at, now)) > config.schedule.failing_after:
        problems.append(f"no successful poll for {human(quiet)}")
    if status.newest_date and (silent := age_of(status.newest_date, now)) > config.stale_after(channel):
        problems.append(f"no new post for {human(silent)}")
    return problems


def human(seconds: float) -> str:
    """``90`` -> ``1m``, ``7200`` -> ``2h``, ``300000`` -> ``3d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"



def alerts_problem(undelivered: int, oldest: str | None, config: Config, now: datetime | None = None) -> str | None:
    """Undelivered alerts older than ``[alerts] unhealthy_after`` (when there is somewhere to send)."""
    if not undelivered or oldest is None or not (config.alerts.notify or any(r.notify for r in config.alerts.rules)):
        return None
    age = age_of(oldest, now)
    if age > config.alerts.unhealthy_after:
        return f"{undelivered} alert(s) undelivered for {human(age)}"
    return None


STAMP_OVERDUE = 3  # stamp intervals a captured record may wait for a time-stamp before status says so


def stamps_problem(evidence: EvidenceState, config: Config, now: datetime | None = None) -> str | None:
    """Records captured more than three stamp intervals ago that no time-stamp covers (authorities
    configured): every authority has been down or refusing that long."""
    if not config.evidence.tsa or evidence.unstamped_since is None:
        return None
    age = age_of(evidence.unstamped_since, now)
    if age > STAMP_OVERDUE * config.evidence.stamp_interval:
        return f"captures of the last {human(age)} have no time-stamp (see `legation stamp`)"
    return None
