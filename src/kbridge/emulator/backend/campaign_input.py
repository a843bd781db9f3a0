"""Request bodies of the campaign operations, checked and normalised.

Each function takes an attribute's raw JSON and returns what a record stores, or raises
:class:`InvalidError` with the JSON pointer of the offending field.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from kbridge.emulator.backend.campaign_records import CHANNELS, copy_value
from kbridge.emulator.backend.common import timestamp_attr
from kbridge.emulator.backend.errors import InvalidError

__all__ = [
    "EMAIL_CONTENT",
    "PTR",
    "THROTTLE_PERCENTAGES",
    "default_tracking",
    "parse_definition",
    "parse_name",
    "parse_send_options",
    "parse_strategy",
    "parse_tracking",
]

PTR = "/data/attributes"
THROTTLE_PERCENTAGES = (1, 2, 5, 10, 11, 13, 14, 17, 20, 25, 33, 50)
#: the content fields of an email message (the rest of a definition is kept as given)
EMAIL_CONTENT = (
    "subject",
    "preview_text",
    "from_email",
    "from_label",
    "reply_to_email",
    "cc_email",
    "bcc_email",
)


def parse_name(attrs: dict[str, Any]) -> str:
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidError("name is required and must be a non-empty string", pointer=f"{PTR}/name")
    return name


def parse_definition(value: Any, ptr: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidError("definition must be an object", pointer=ptr)
    channel = value.get("channel")
    if channel not in CHANNELS:
        raise InvalidError(
            f"definition.channel must be one of {', '.join(CHANNELS)}", pointer=f"{ptr}/channel"
        )
    content = value.get("content")
    if content is not None and not isinstance(content, dict):
        raise InvalidError("definition.content must be an object", pointer=f"{ptr}/content")
    out = copy_value(value)
    if channel == "email":
        out.setdefault("label", None)
        out["content"] = {k: (content or {}).get(k) for k in EMAIL_CONTENT}
    return dict(out)


def parse_strategy(value: Any) -> dict[str, Any]:
    ptr = f"{PTR}/send_strategy"
    if not isinstance(value, dict):
        raise InvalidError("send_strategy must be an object", pointer=ptr)
    method = value.get("method")
    if method == "immediate":
        return {"method": "immediate"}
    if method == "static":
        timestamp_attr(value.get("datetime"), f"{ptr}/datetime")
        options = value.get("options") or {"is_local": False}
        if not isinstance(options, dict) or not isinstance(options.get("is_local", False), bool):
            raise InvalidError("options.is_local must be a boolean", pointer=f"{ptr}/options")
        opts: dict[str, Any] = {"is_local": bool(options.get("is_local", False))}
        if opts["is_local"]:
            opts["send_past_recipients_immediately"] = bool(
                options.get("send_past_recipients_immediately", False)
            )
        return {"method": "static", "datetime": value["datetime"], "options": opts}
    if method == "throttled":
        timestamp_attr(value.get("datetime"), f"{ptr}/datetime")
        pct = value.get("throttle_percentage")
        if pct not in THROTTLE_PERCENTAGES or isinstance(pct, bool):
            raise InvalidError(
                f"throttle_percentage must be one of {', '.join(map(str, THROTTLE_PERCENTAGES))}",
                pointer=f"{ptr}/throttle_percentage",
            )
        return {"method": "throttled", "datetime": value["datetime"], "throttle_percentage": pct}
    if method == "smart_send_time":
        try:
            date.fromisoformat(str(value.get("date")))
        except ValueError:
            raise InvalidError("date must be a YYYY-MM-DD date", pointer=f"{ptr}/date") from None
        return {"method": "smart_send_time", "date": value["date"]}
    raise InvalidError(
        "send_strategy.method must be one of immediate, static, throttled, smart_send_time",
        pointer=f"{ptr}/method",
    )


def parse_send_options(value: Any) -> dict[str, Any]:
    if value is None:
        return {"use_smart_sending": True}
    if not isinstance(value, dict):
        raise InvalidError("send_options must be an object", pointer=f"{PTR}/send_options")
    smart = value.get("use_smart_sending", True)
    if not isinstance(smart, bool):
        raise InvalidError(
            "use_smart_sending must be a boolean", pointer=f"{PTR}/send_options/use_smart_sending"
        )
    return {"use_smart_sending": smart}


def default_tracking() -> dict[str, Any]:
    return {
        "add_tracking_params": False,
        "custom_tracking_params": None,
        "is_tracking_clicks": True,
        "is_tracking_opens": True,
    }


def parse_tracking(value: Any) -> dict[str, Any]:
    out = default_tracking()
    if value is None:
        return out
    if not isinstance(value, dict):
        raise InvalidError("tracking_options must be an object", pointer=f"{PTR}/tracking_options")
    for name in ("add_tracking_params", "is_tracking_clicks", "is_tracking_opens"):
        if name in value and value[name] is not None:
            if not isinstance(value[name], bool):
                raise InvalidError(
                    f"{name} must be a boolean", pointer=f"{PTR}/tracking_options/{name}"
                )
            out[name] = value[name]
    if value.get("custom_tracking_params") is not None:
        if not isinstance(value["custom_tracking_params"], list):
            ptr = f"{PTR}/tracking_options/custom_tracking_params"
            raise InvalidError("custom_tracking_params must be a list", pointer=ptr)
        out["custom_tracking_params"] = copy_value(value["custom_tracking_params"])
    return out
