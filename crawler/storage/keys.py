"""Keys the service makes for itself: secrets kept in the database, made once."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import ServiceKey, utcnow

KEY_BYTES = 32
# The key that signs the URLs newswatch hands out (private feed URLs; links in
# emails later): one key, so that "a signed link" has one meaning.
LINK_SIGNING_KEY = "link-signing"


class KeyQueries(StoreBase):
    """The service's own secret keys, by name."""

    def service_key(self, name: str) -> bytes:
        """The secret key ``name``: 32 random bytes made the first time anyone asks
        and kept, the same for every process and every restart after. Of two
        processes making it at once, the first insert wins and both read that one."""
        wanted = select(ServiceKey.value).where(ServiceKey.name == name)
        with self._session() as session:
            value = session.scalar(wanted)
        if value is not None:
            return bytes(value)
        with self._session.begin() as session:
            session.execute(
                _insert_ignoring_conflict(
                    session,
                    ServiceKey,
                    {"name": name, "value": secrets.token_bytes(KEY_BYTES), "created_at": utcnow()},
                )
            )
        with self._session() as session:
            return bytes(session.scalars(wanted).one())
