"""Every validated field refuses bad input before sending, naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kbridge.api.resources.campaigns import email_message
from kbridge.api.resources.data_privacy import DataPrivacyService
from kbridge.api.resources.events import NewEvent, bulk_job_body
from kbridge.api.resources.profiles import profile_attributes
from kbridge.api.resources.reporting import timeframe
from kbridge.api.resources.segments import segment_definition
from kbridge.api.validation import (
    ValidationError,
    check_aware,
    check_campaign_channel_filter,
    check_currency,
    check_email,
    check_payload_size,
    check_phone,
)
from kbridge.core import ConfigurationError

pytestmark = pytest.mark.unit

NAIVE = datetime.fromisoformat("2026-01-01T00:00:00")  # no offset: ambiguous by hours


@pytest.mark.parametrize(
    "bad", ["", "plain", "a@b", "a@@b.co", "a b@c.co", "a@b..co", "@b.co", "a@.co", "a@b.c"]
)
def test_bad_emails_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_email(bad)
    assert err.value.field == "email"
    assert "not a valid email" in str(err.value)


@pytest.mark.parametrize("good", ["a@b.co", "first.last+tag@sub.example.org", " x@y.io "])
def test_good_emails_pass_stripped(good: str) -> None:
    assert check_email(good) == good.strip()


@pytest.mark.parametrize(
    "bad", ["5005550006", "+1 500 555 0006", "+0123456789", "+12", "+1234567890123456", "+1-500"]
)
def test_bad_phones_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_phone(bad)
    assert err.value.field == "phone_number"
    assert "E.164" in str(err.value)


def test_good_phone_passes() -> None:
    assert check_phone("+15005550006") == "+15005550006"


@pytest.mark.parametrize("bad", ["usd", "US", "USDD", "XYZ", "US1"])
def test_bad_currencies_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_currency(bad)
    assert err.value.field == "value_currency"


def test_real_currencies_pass() -> None:
    for code in ("USD", "EUR", "JPY", "GBP"):
        assert check_currency(code) == code


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError) as err:
        check_aware(NAIVE, "send_at")
    assert err.value.field == "send_at"
    assert "no timezone" in str(err.value)
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert check_aware(aware, "send_at") is aware


def test_payloads_over_100_kb_are_refused() -> None:
    with pytest.raises(ValidationError) as err:
        check_payload_size({"blob": "x" * (100 * 1024)}, "properties")
    assert err.value.field == "properties"
    assert "100 KB" in str(err.value)
    check_payload_size({"blob": "x" * 1000}, "properties")


def test_campaign_listing_needs_a_channel() -> None:
    for bad in (None, "", "equals(name,'x')"):
        with pytest.raises(ValidationError) as err:
            check_campaign_channel_filter(bad)
        assert err.value.field == "filter"
    assert check_campaign_channel_filter("equals(messages.channel,'email')")


def test_validation_errors_are_configuration_errors() -> None:
    assert issubclass(ValidationError, ConfigurationError)


def test_profile_attributes_validate_each_field() -> None:
    with pytest.raises(ValidationError, match="email"):
        profile_attributes(email="nope")
    with pytest.raises(ValidationError) as phone:
        profile_attributes(phone_number="555-1234")
    assert phone.value.field == "phone_number"
    with pytest.raises(ValidationError) as loc:
        profile_attributes(location={"planet": "Mars"})
    assert loc.value.field == "location"
    with pytest.raises(ValidationError) as props:
        profile_attributes(properties={"big": "y" * 110_000})
    assert props.value.field == "properties"
    attrs = profile_attributes(email="a@b.co", first_name="A", location={"city": "X"})
    assert attrs == {"email": "a@b.co", "first_name": "A", "location": {"city": "X"}}


def test_event_fields_are_validated_with_their_position() -> None:
    good = NewEvent(metric="M", profile={"email": "a@b.co"})
    bad_currency = NewEvent(metric="M", profile={"email": "a@b.co"}, value_currency="usd")
    with pytest.raises(ValidationError) as err:
        bulk_job_body([good, bad_currency])
    assert err.value.field == "events[1].value_currency"
    naive = NewEvent(metric="M", profile={"email": "a@b.co"}, time=NAIVE)
    with pytest.raises(ValidationError) as t:
        naive.attributes()
    assert t.value.field == "time"
    nobody = NewEvent(metric="M", profile={"first_name": "X"})
    with pytest.raises(ValidationError) as who:
        nobody.profile_attributes()
    assert who.value.field == "profile.profile"
    with pytest.raises(ValidationError) as email:
        NewEvent(metric="M", profile={"email": "bad"}).profile_attributes()
    assert email.value.field == "profile.email"


def test_bulk_job_groups_events_under_their_profile() -> None:
    events = [
        NewEvent(metric="A", profile={"email": "a@b.co"}, value=1.0, value_currency="USD"),
        NewEvent(metric="B", profile={"email": "a@b.co"}),
        NewEvent(metric="A", profile={"email": "c@d.co"}),
    ]
    body = bulk_job_body(events)
    items = body["data"]["attributes"]["events-bulk-create"]["data"]
    assert [i["attributes"]["profile"]["data"]["attributes"]["email"] for i in items] == [
        "a@b.co",
        "c@d.co",
    ]
    assert len(items[0]["attributes"]["events"]["data"]) == 2
    first = items[0]["attributes"]["events"]["data"][0]["attributes"]
    assert first["metric"]["data"]["attributes"]["name"] == "A"
    assert first["value_currency"] == "USD"


def test_campaign_message_fields() -> None:
    with pytest.raises(ValidationError) as sender:
        email_message(subject="Hi", from_email="shop")
    assert sender.value.field == "from_email"
    with pytest.raises(ValidationError) as subject:
        email_message(subject=" ", from_email="shop@x.co")
    assert subject.value.field == "subject"


def test_segment_definition_needs_conditions_with_types() -> None:
    with pytest.raises(ValidationError) as empty:
        segment_definition([])
    assert empty.value.field == "condition_groups"
    with pytest.raises(ValidationError) as untyped:
        segment_definition([{"conditions": [{"is_member": True}]}])
    assert untyped.value.field == "condition_groups[0].conditions[0]"


def test_report_timeframe_is_a_key_or_an_aware_range() -> None:
    assert timeframe("last_30_days") == {"key": "last_30_days"}
    with pytest.raises(ValidationError) as key:
        timeframe("last_31_days")
    assert key.value.field == "timeframe"
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert timeframe(start=start, end=end)["start"].startswith("2026-01-01")
    with pytest.raises(ValidationError) as order:
        timeframe(start=end, end=start)
    assert order.value.field == "end"
    with pytest.raises(ValidationError) as naive:
        timeframe(start=NAIVE, end=end)
    assert naive.value.field == "start"


@pytest.mark.anyio
async def test_deletion_needs_exactly_one_identifier() -> None:
    service = DataPrivacyService(None)  # type: ignore[arg-type]  # refused before any call
    with pytest.raises(ValidationError, match="exactly one"):
        await service.request_profile_deletion()
    with pytest.raises(ValidationError, match="got email, profile_id"):
        await service.request_profile_deletion(email="a@b.co", profile_id="X")


@pytest.mark.parametrize("good", ["josé@example.com", "Zoë.Ünal@example.de", "用户@example.com"])
def test_internationalised_local_parts_pass(good: str) -> None:
    assert check_email(good) == good


@pytest.mark.parametrize(
    "bad", ["jo sé@example.com", "jo\u200bsé@example.com", "😀@example.com", "josé@.example.com"]
)
def test_non_letters_outside_ascii_are_still_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="not a valid email"):
        check_email(bad)
