"""ACME account contacts: plain mailto: addresses only; control characters (NUL included) are refused."""

from __future__ import annotations

import pytest

from service.authority.acme.accounts import parse_contact
from service.authority.acme.problems import AcmeProblem


@pytest.mark.parametrize("contact", ["mailto:a\x00@example.com", "mailto:a@example.com\x00", "mailto:a\t@b.test"])
def test_control_characters_are_an_invalid_contact(contact: str) -> None:
    with pytest.raises(AcmeProblem) as refused:
        parse_contact([contact])
    assert refused.value.kind == "invalidContact"


def test_a_plain_address_is_kept() -> None:
    assert parse_contact(["mailto:ops@example.com"]) == ["mailto:ops@example.com"]
