"""A rendered template becomes the Alert: one CAP info block per language, in the workspace's name and zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcast.alert import MSG_TYPES, STATUSES, Alert, AlertArea, Info, cap_time

if TYPE_CHECKING:
    from broadcast.prepare.templates import Rendering
    from broadcast.workspace import Workspace


def build_alert(
    workspace: Workspace,
    rendering: Rendering,
    *,
    identifier: str,
    sent: datetime,
    status: str = "Actual",
    msg_type: str = "Alert",
    references: tuple[str, ...] = (),
    incident: str | None = None,
    note: str | None = None,
) -> Alert:
    """Make the Alert for a rendered template: one info block per language."""
    if status not in STATUSES or msg_type not in MSG_TYPES:
        raise ValueError(f"bad status {status!r} or msgType {msg_type!r}")
    template = rendering.template
    cap = template.cap
    expires = cap_time(sent + timedelta(minutes=cap.expires_minutes), workspace.timezone)
    org = workspace.organisation
    infos = []
    fallback = workspace.area_default()
    for language, texts in rendering.texts.items():
        areas = tuple(AlertArea.from_area(a, language) for a in rendering.areas)
        if not areas:
            areas = (AlertArea.from_area(fallback, language),) if fallback else (AlertArea(org.name.get(language)),)
        infos.append(Info(
            language=language,
            category=cap.category,
            event=cap.event,
            response_type=cap.response_type,
            urgency=cap.urgency,
            severity=cap.severity,
            certainty=cap.certainty,
            expires=expires,
            sender_name=org.name.get(language),
            headline=texts["headline"].full(),
            description=texts["body"].full(),
            instruction=texts["instruction"].full(),
            web=org.web,
            contact=org.phone,
            areas=areas,
            texts={variant: [[part, optional] for part, optional in text.parts] for variant, text in texts.items()},
        ))
    if status == "Exercise":  # CAP 1.2: the note may identify the exercise; a reader of the file alone sees what it is
        note = f"Exercise: not a real warning. {note}" if note else "Exercise: not a real warning."
    return Alert(
        identifier=identifier,
        sender=org.sender,
        sent=cap_time(sent, workspace.timezone),
        status=status,
        msg_type=msg_type,
        scope="Public",
        infos=tuple(infos),
        references=references,
        incidents=incident,
        note=note,
        template=template.name,
        template_sha256=template.sha256,
        variables=dict(rendering.raw),
    )
