"""Email addresses as mail servers take them: an internationalised domain in its
IDNA (``xn--``) form, and whether the local part needs SMTPUTF8 (RFC 6531).

``zoë@exämple.com`` goes out as ``zoë@xn--exmple-cua.com``: every server resolves
the ASCII domain, but only one that offers SMTPUTF8 takes the ``ë`` of the local
part, which no encoding can make ASCII (RFC 2047 encoded-words are not allowed
inside an address). Pure functions, no network.
"""

from __future__ import annotations

import idna

__all__ = ["AddressError", "header_address", "needs_smtputf8", "transport_address"]


class AddressError(ValueError):
    """An address whose domain has no IDNA form (it cannot be looked up in DNS)."""


def transport_address(address: str) -> str:
    """``address`` with its domain in IDNA form (ASCII); the local part as written.

    An ASCII domain, and an address literal (``[192.0.2.1]``), are kept as they are.
    Raises AddressError when the domain is no valid internationalised domain name.
    """
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise AddressError(
            f"the domain {domain!r} of {address!r} is no valid domain name ({error})"
        ) from error
    return f"{local}@{ascii_domain}"


def header_address(address: str) -> str:
    """``address`` as a message's headers and envelope carry it: ``transport_address``,
    or as written when its domain has no IDNA form (the configuration refuses those;
    the server will say no)."""
    try:
        return transport_address(address)
    except AddressError:
        return address


def needs_smtputf8(address: str) -> bool:
    """True when ``address`` can only be sent with SMTPUTF8: its local part (or,
    before ``transport_address``, its domain) holds non-ASCII characters."""
    return not address.isascii()
