"""Secrets every worker and replica of one database shares (`server_secrets`), each made once by whichever
process needs it first."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from service.db.models import ServerSecretRecord
from service.db.session import Database


def shared_secret(db: Database, name: str, *, size: int = 32) -> bytes:
    """The secret called `name`; made (`size` random bytes) if there is none yet. Writers take turns, so two
    processes starting at once agree on one."""
    with db.reader() as session:
        record = session.get(ServerSecretRecord, name)
    if record is None:
        with db.writer() as session:
            record = session.get(ServerSecretRecord, name)
            if record is None:
                value = base64.urlsafe_b64encode(secrets.token_bytes(size)).decode()
                record = ServerSecretRecord(name=name, value=value, created_at=dt.datetime.now(dt.UTC))
                session.add(record)
    return base64.urlsafe_b64decode(record.value)
