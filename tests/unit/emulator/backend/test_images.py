from __future__ import annotations

import base64
from typing import Any

import pytest

from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.images import MAX_IMAGE_BYTES, sniff_format
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Condition, Page, Query, Sort
from kbridge.emulator.simclock import SimClock
from tests.unit.emulator.backend.conftest import Caller, caller, make_backend

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40
GIF = b"GIF89a" + b"\x00" * 40


def _from_url(ecall: Caller, source: str, **attrs: Any) -> Resource:
    body = {"data": {"type": "image", "attributes": {"import_from_url": source, **attrs}}}
    out = ecall("upload_image_from_url", body=body)
    assert out.status == 201
    assert isinstance(out.data, Resource)
    return out.data


def _upload(ecall: Caller, data: bytes, **fields: Any) -> Resource:
    out = ecall("upload_image_from_file", body={"file": data, **fields})
    assert out.status == 201
    assert isinstance(out.data, Resource)
    return out.data


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    ("data", "fmt"),
    [(PNG, "png"), (JPEG, "jpeg"), (GIF, "gif"), (b"GIF87a..", "gif"), (b"BM6\x00", None),
     (b"RIFF....WEBP", None), (b"", None)],
)  # fmt: skip
def test_sniff_format_reads_magic_bytes(data: bytes, fmt: str | None) -> None:
    assert sniff_format(data) == fmt


def test_data_uri_is_decoded_for_real(ecall: Caller) -> None:
    img = _from_url(ecall, _data_uri(JPEG, "image/png"))  # the bytes decide, not the label
    attrs = img.attributes
    assert (attrs["format"], attrs["size"], attrs["hidden"]) == ("jpeg", len(JPEG), False)
    assert attrs["image_url"].endswith(f"/images/{img.id}.jpg")
    assert attrs["name"] == "image.jpeg"


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        (_data_uri(b"%PDF-1.4 hello"), "unsupported image format"),
        ("data:image/png;base64,@@@not base64@@@", "not valid base64"),
        ("data:text/plain;base64,aGVsbG8=", "data URI must look like"),
        ("ftp://example.com/a.png", "http(s) URL"),
        ("https://example.com/a.webp", "unsupported image format 'webp'"),
        ("", "import_from_url is required"),
    ],
)
def test_bad_sources_are_a_clear_400(ecall: Caller, source: str, needle: str) -> None:
    body = {"data": {"type": "image", "attributes": {"import_from_url": source}}}
    with pytest.raises(InvalidError) as err:
        ecall("upload_image_from_url", body=body)
    assert needle in err.value.detail
    assert err.value.pointer == "/data/attributes/import_from_url"


def test_url_import_fabricates_stable_metadata(ecall: Caller) -> None:
    a = _from_url(ecall, "https://cdn.example.com/img/Hero%20Shot.PNG", hidden=True)
    b = _from_url(ecall, "https://cdn.example.com/img/Hero%20Shot.PNG")
    assert (a.attributes["format"], a.attributes["hidden"]) == ("png", True)
    assert a.attributes["size"] == b.attributes["size"] > 0
    # the name defaults to the file name; a taken name gets a suffix
    assert (a.attributes["name"], b.attributes["name"]) == ("Hero Shot.PNG", "Hero Shot_1.PNG")
    c = _from_url(ecall, "https://cdn.example.com/render?id=7", name="Chart")
    assert (c.attributes["name"], c.attributes["format"]) == ("Chart", "jpeg")


def test_multipart_upload_checks_the_file(ecall: Caller) -> None:
    img = _upload(ecall, GIF, **{"file;filename": "anim.png", "hidden": "true"})
    assert (img.attributes["format"], img.attributes["name"]) == ("gif", "anim.png")
    assert img.attributes["hidden"] is True
    named = _upload(ecall, PNG, name="Logo", hidden="false")
    assert (named.attributes["name"], named.attributes["hidden"]) == ("Logo", False)
    with pytest.raises(InvalidError) as err:
        ecall("upload_image_from_file", body={"name": "no file"})
    assert err.value.pointer == "/file"
    too_big = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG) + 1)
    with pytest.raises(InvalidError) as err:
        ecall("upload_image_from_file", body={"file": too_big})
    assert "maximum is 5 MB" in err.value.detail
    exactly = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG))
    assert _upload(ecall, exactly).attributes["size"] == MAX_IMAGE_BYTES
    with pytest.raises(InvalidError) as err:
        ecall("upload_image_from_file", body={"file": PNG, "hidden": "maybe"})
    assert err.value.pointer == "/hidden"


def test_update_list_filter_and_sort(ecall: Caller) -> None:
    small = _upload(ecall, PNG, name="small")
    large = _upload(ecall, JPEG + b"\x00" * 100, name="large")
    body = {"data": {"type": "image", "id": small.id, "attributes": {"hidden": True}}}
    updated = ecall("update_image", body=body, id=small.id).data
    assert isinstance(updated, Resource)
    assert (updated.attributes["hidden"], updated.attributes["name"]) == (True, "small")
    q = Query(conditions=(Condition("equals", "hidden", True),))
    hidden = ecall("get_images", q).data
    assert isinstance(hidden, Page)
    assert [i.id for i in hidden.items] == [small.id]
    by_size = ecall("get_images", Query(sort=Sort("size", descending=True))).data
    assert [i.id for i in by_size.items] == [large.id, small.id]  # type: ignore[union-attr]
    q = Query(conditions=(Condition("any", "format", ("jpeg", "gif")),))
    assert [i.id for i in ecall("get_images", q).data.items] == [large.id]  # type: ignore[union-attr]


def test_generated_account_has_a_few_images(call: Caller) -> None:
    images = call("get_images").data
    assert isinstance(images, Page)
    assert {i.attributes["format"] for i in images.items} == {"png", "jpeg", "gif"}


def test_uploaded_bytes_are_served_by_the_emulator(clock: SimClock) -> None:
    backend = make_backend(clock, profiles=0, events=0, public_base_url="http://emu.test/")
    ecall = caller(backend)
    img = _upload(ecall, GIF)
    assert img.attributes["image_url"] == f"http://emu.test/_emulator/images/{img.id}.gif"
    assert backend.image_file(f"{img.id}.gif") == (GIF, "image/gif")
    fetched = _from_url(ecall, "https://example.com/a.png")  # no bytes: nothing to serve
    assert fetched.attributes["image_url"].startswith("https://d3k81ch9hvuctc.cloudfront.net/")
    assert backend.image_file(f"{fetched.id}.png") is None
    assert backend.image_file("404.png") is None
