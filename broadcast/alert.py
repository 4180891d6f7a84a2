"""The Alert: the one internal message, shaped like CAP 1.2, from which every output is derived."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from broadcast.workspace import Area

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")


def cap_time(moment: datetime, zone: str) -> str:
    """CAP dateTime: local time with its offset, no fractions, never 'Z' (UTC is written -00:00)."""
    local = moment.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    sign_offset = "-00:00" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + sign_offset


def shown_time(moment: datetime | str, zone: str, *, date: bool = False) -> str:
    """A time as the duty officer reads it: their zone, named ('06:42 GMT', '06:42 BST'); with `date`,
    'Mon 23 Nov 06:42 GMT'. Machines get ISO 8601 instead (cap_time, or isoformat with Z)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%a %d %b %H:%M %Z" if date else "%H:%M %Z")


def degrees(value: float) -> str:
    """A coordinate as CAP wants it: plain decimal, at most 6 places (never 1e-05)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True)
class AlertArea:
    desc: str
    polygons: tuple[str, ...] = ()  # CAP form: "lat,lon lat,lon ...", first pair == last
    geocodes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_area(cls, area: Area, language: str) -> AlertArea:
        polygons = tuple(" ".join(f"{degrees(lat)},{degrees(lon)}" for lat, lon in ring) for ring in area.polygons)
        return cls(area.name.get(language), polygons, tuple(sorted(area.geocodes.items())))


@dataclass(frozen=True)
class Info:
    language: str
    category: tuple[str, ...]
    event: str
    response_type: tuple[str, ...]
    urgency: str
    severity: str
    certainty: str
    expires: str
    sender_name: str
    headline: str
    description: str
    instruction: str
    web: str
    contact: str
    areas: tuple[AlertArea, ...]
    # variant -> [[text, optional], ...]: what channels fit to their limits
    texts: dict[str, list[list[Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    scope: str
    infos: tuple[Info, ...]
    references: tuple[str, ...] = ()
    incidents: str | None = None
    note: str | None = None
    template: str | None = None
    template_sha256: str | None = None
    variables: dict[str, str] = field(default_factory=dict)

    def info(self, language: str) -> Info:
        return next((i for i in self.infos if i.language == language), self.infos[0])

    @property
    def referenced(self) -> tuple[str, ...]:
        """The identifiers of the alerts it references (each reference is CAP's 'sender,identifier,sent', or a bare
        identifier)."""
        return tuple(parts[1] if len(parts) == 3 else parts[0]
                     for parts in (reference.strip().split(",") for reference in self.references))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        infos = tuple(
            Info(**{**i, "category": tuple(i["category"]), "response_type": tuple(i["response_type"]),
                    "areas": tuple(AlertArea(a["desc"], tuple(a["polygons"]), tuple(map(tuple, a["geocodes"])))
                                   for a in i["areas"])})
            for i in data["infos"]
        )
        return cls(**{**data, "infos": infos, "references": tuple(data.get("references", ()))})
