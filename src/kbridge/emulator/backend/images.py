"""Images: the account's asset library (list, get, rename/hide, upload).

Three ways in, as Klaviyo has them: ``import_from_url`` with an http(s) URL,
``import_from_url`` with a ``data:image/…;base64,`` URI, and a multipart
upload (``file``, ``name``, ``hidden``). The emulator has no network, so a
URL import fabricates deterministic metadata (format from the URL's
extension, a size derived from the URL); bytes it is actually given (data
URI, upload) are checked for real: the format comes from the magic bytes,
never from a name, only JPEG/PNG/GIF pass, and 5 MB is the ceiling.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    page_of,
    page_outcome,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["MAX_IMAGE_BYTES", "ImageRecord", "ImagesBackend", "sniff_format"]

MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: where Klaviyo serves uploaded images from (the emulator only names the URL)
CDN = "https://d3k81ch9hvuctc.cloudfront.net/company"
#: where the emulator serves the images it holds the bytes of (control plane)
SERVED_AT = "/_emulator/images"
_EXTENSIONS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "gif": "gif"}
_SUPPORTED = "jpeg, png or gif"


@dataclass(slots=True)
class ImageRecord:
    seq: int
    id: str
    name: str
    format: str
    size: int
    hidden: bool
    updated_at: float
    image_url: str
    #: the file itself, when the emulator was given it (data URI or upload)
    content: bytes | None = None


def sniff_format(data: bytes) -> str | None:
    """``jpeg``/``png``/``gif`` from the file's magic bytes, else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def _checked_bytes(data: bytes, pointer: str) -> str:
    """The format of an image given as bytes, or a 400 saying what is wrong with it."""
    if not data:
        raise InvalidError("the image is empty", pointer=pointer)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidError(
            f"the image is {len(data)} bytes; the maximum is 5 MB ({MAX_IMAGE_BYTES} bytes)",
            pointer=pointer,
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidError(f"unsupported image format; upload {_SUPPORTED}", pointer=pointer)
    return fmt


def _attr(by_seq: dict[int, ImageRecord], name: str, s: int) -> Any:
    return getattr(by_seq[s], name)


def _decode_data_uri(uri: str, pointer: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise InvalidError(
            "a data URI must look like data:image/png;base64,<base64 data>", pointer=pointer
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidError("the data URI's payload is not valid base64", pointer=pointer) from None


def _flag(value: Any, pointer: str) -> bool:
    """``hidden`` as JSON gives it (bool/null) or as a form field gives it (text)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise InvalidError("hidden must be a boolean", pointer=pointer)


class ImagesBackend(TagBackend):
    operations = frozenset(
        {
            "get_images",
            "get_image",
            "update_image",
            "upload_image_from_url",
            "upload_image_from_file",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.images: dict[str, ImageRecord] = {}
        self._next_id = 1000
        ctx.images = self
        if ctx.store.profiles:  # a generated account has a small asset library
            self.add("logo.png", "png", 18_204, hidden=False)
            self.add("hero-banner.jpg", "jpeg", 248_913, hidden=False)
            self.add("loading.gif", "gif", 6_530, hidden=True)

    def resource(self, img: ImageRecord) -> Resource:
        attrs = {
            "name": img.name,
            "image_url": img.image_url,
            "format": img.format,
            "size": img.size,
            "hidden": img.hidden,
            "updated_at": iso(img.updated_at),
        }
        return Resource("image", img.id, attrs)

    def _get(self, call: Call) -> ImageRecord:
        iid = self.path_id(call)
        return existing(self.images, "image", iid)

    # -- reads -------------------------------------------------------------------------

    def get_images(self, call: Call) -> Outcome:
        by_seq = {img.seq: img for img in self.images.values()}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            img = by_seq[s]
            return (int(img.id) if sort == "id" else getattr(img, sort), s)

        getters: dict[str, Callable[[int], Any]] = {
            name: partial(_attr, by_seq, name)
            for name in ("id", "updated_at", "format", "name", "size", "hidden")
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: self.resource(by_seq[s]))

    def get_image(self, call: Call) -> Outcome:
        return Outcome(data=self.resource(self._get(call)))

    # -- writes ------------------------------------------------------------------------

    def update_image(self, call: Call) -> Outcome:
        img = self._get(call)
        attrs = attributes_of(data_of(call.body, "image"))
        if attrs.get("name") is not None:
            name = attrs["name"]
            if not isinstance(name, str) or not name.strip():
                raise InvalidError(
                    "name must be a non-empty string", pointer="/data/attributes/name"
                )
            img.name = self._unique_name(name, img.id)
        if attrs.get("hidden") is not None:
            img.hidden = _flag(attrs["hidden"], "/data/attributes/hidden")
        img.updated_at = self.ctx.now()
        return Outcome(data=self.resource(img))

    def upload_image_from_url(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "image"))
        ptr = "/data/attributes/import_from_url"
        source = attrs.get("import_from_url")
        if not isinstance(source, str) or not source.strip():
            raise InvalidError(
                "import_from_url is required: an image URL or a data URI", pointer=ptr
            )
        raw: bytes | None = None
        if source.startswith("data:"):
            raw = _decode_data_uri(source, ptr)
            fmt, size = _checked_bytes(raw, ptr), len(raw)
            default_name = f"image.{fmt}"
        else:
            fmt, size, default_name = self._from_url(source, ptr)
        name = self._name_attr(attrs.get("name"), "/data/attributes/name") or default_name
        hidden = _flag(attrs.get("hidden"), "/data/attributes/hidden")
        img = self.add(name, fmt, size, hidden, content=raw)
        return Outcome(data=self.resource(img), status=201)

    def upload_image_from_file(self, call: Call) -> Outcome:
        form = call.body if isinstance(call.body, dict) else {}
        data = form.get("file")
        if not isinstance(data, bytes):
            raise InvalidError(
                "the multipart field 'file' (the image file) is required", pointer="/file"
            )
        fmt = _checked_bytes(data, "/file")
        filename = form.get("file;filename")
        default_name = filename if isinstance(filename, str) and filename else f"image.{fmt}"
        name = self._name_attr(form.get("name"), "/name") or default_name
        hidden = _flag(form.get("hidden"), "/hidden")
        img = self.add(name, fmt, len(data), hidden, content=data)
        return Outcome(data=self.resource(img), status=201)

    def _from_url(self, url: str, ptr: str) -> tuple[str, int, str]:
        """Metadata for a URL the emulator cannot fetch: deterministic, shaped by the URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidError(
                "import_from_url must be an http(s) URL or a data:image/…;base64 URI", pointer=ptr
            )
        filename = unquote(parts.path.rsplit("/", 1)[-1])
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext and ext not in _EXTENSIONS:
            raise InvalidError(f"unsupported image format {ext!r}; use {_SUPPORTED}", pointer=ptr)
        fmt = _EXTENSIONS.get(ext, "jpeg")
        size = 20_000 + zlib.crc32(url.encode()) % 480_000
        return fmt, size, filename or f"image.{fmt}"

    @staticmethod
    def _name_attr(value: Any, pointer: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidError("name must be a string", pointer=pointer)
        return value

    def _unique_name(self, name: str, own_id: str | None = None) -> str:
        """Klaviyo suffixes a name that another image already has."""
        taken = {img.name for img in self.images.values() if img.id != own_id}
        if name not in taken:
            return name
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        n = 1
        while True:
            candidate = f"{stem}_{n}.{ext}" if ext else f"{stem}_{n}"
            if candidate not in taken:
                return candidate
            n += 1

    def add(
        self, name: str, fmt: str, size: int, hidden: bool, *, content: bytes | None = None
    ) -> ImageRecord:
        """Store a new image (also used to seed a generated account).

        An image whose bytes the emulator holds is served by the emulator itself
        (``/_emulator/images/{id}.{ext}``, when its base URL is known); others
        get a URL shaped like Klaviyo's CDN, which nothing here serves.
        """
        self._next_id += 1
        iid = str(self._next_id)
        ext = "jpg" if fmt == "jpeg" else fmt
        base = self.ctx.config.public_base_url
        if content is not None and base:
            url = f"{base.rstrip('/')}{SERVED_AT}/{iid}.{ext}"
        else:
            url = f"{CDN}/{self.store.account_id}/images/{iid}.{ext}"
        img = ImageRecord(
            seq=self.store.next_seq(),
            id=iid,
            name=self._unique_name(name),
            format=fmt,
            size=size,
            hidden=hidden,
            updated_at=self.ctx.now(),
            image_url=url,
            content=content,
        )
        self.images[img.id] = img
        return img

    def file(self, filename: str) -> tuple[bytes, str] | None:
        """``(bytes, media type)`` of ``"{id}.{ext}"`` when the emulator holds that image."""
        iid = filename.rsplit(".", 1)[0]
        img = self.images.get(iid)
        if img is None or img.content is None:
            return None
        return img.content, f"image/{img.format}"
