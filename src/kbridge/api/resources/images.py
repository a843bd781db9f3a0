"""``client.images``: the account's image library (Klaviyo tag *Images*).

An image is imported from a URL or a ``data:`` URI (``upload_image_from_url``),
or a local file is uploaded as ``multipart/form-data`` (``upload_image_from_file``).
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Unpack

import anyio

from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Service, list_params
from kbridge.api.validation import ValidationError

__all__ = ["IMAGE_TYPES", "MAX_IMAGE_BYTES", "ImagesService", "data_uri"]

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: Klaviyo's documented ceiling for one image
MAX_IMAGE_BYTES = 5 * 1024 * 1024


def data_uri(content: bytes, media_type: str) -> str:
    """``data:<type>;base64,…`` for an image's bytes."""
    _check_image(content, media_type)
    return f"data:{media_type};base64,{base64.b64encode(content).decode('ascii')}"


def _check_image(content: bytes, media_type: str) -> None:
    if media_type not in IMAGE_TYPES:
        raise ValidationError("file", f"{media_type} is not an image type Klaviyo takes")
    if len(content) > MAX_IMAGE_BYTES:
        raise ValidationError("file", f"{len(content)} bytes; images are limited to 5 MB")


class ImagesService(Service):
    async def get_images(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_images", query)

    def iter_images(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        return self._all("get_images", query)

    async def get_image(self, image_id: str, **query: Unpack[ListQuery]) -> Resource:
        params = list_params("get_image", **query)
        return await self._one("get_image", path_params={"id": image_id}, params=params)

    async def update_image(
        self, image_id: str, *, name: str | None = None, hidden: bool | None = None
    ) -> Resource:
        attrs: dict[str, Any] = {}
        if name is not None:
            attrs["name"] = name
        if hidden is not None:
            attrs["hidden"] = hidden
        body = build_document("image", id=image_id, attributes=attrs)
        return await self._one("update_image", path_params={"id": image_id}, json=body)

    async def upload_image_from_url(
        self, *, url: str, name: str | None = None, hidden: bool | None = None
    ) -> Resource:
        """Import an image from an ``https://`` URL or a ``data:image/…;base64,`` URI.

        Args:
            url: https URL or data: URI
            hidden: hide it in the image library
        """
        if not url.startswith(("https://", "http://", "data:image/")):
            raise ValidationError("url", f"{url[:40]!r} is neither an http(s) URL nor a data URI")
        attrs: dict[str, Any] = {"import_from_url": url}
        if name is not None:
            attrs["name"] = name
        if hidden is not None:
            attrs["hidden"] = hidden
        return await self._one(
            "upload_image_from_url", json=build_document("image", attributes=attrs)
        )

    async def upload_image_from_file(
        self, path: str | Path, *, name: str | None = None, hidden: bool | None = None
    ) -> Resource:
        """Upload a local image file as ``multipart/form-data`` (``POST /api/image-upload``),
        named after the file by default.

        Args:
            path: a local image file
            hidden: hide it in the image library
        """
        file = Path(path)
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        try:
            content = await anyio.Path(file).read_bytes()
        except OSError as exc:
            raise ValidationError("file", f"cannot read {file}: {exc.strerror}") from None
        _check_image(content, media_type)
        fields = {"name": name or file.stem}
        if hidden is not None:
            fields["hidden"] = "true" if hidden else "false"
        return await self._upload(
            "upload_image_from_file",
            fields=fields,
            files={"file": (file.name, content, media_type)},
        )
