"""Subjects: parsing, CSV files, keyed hashes and batch ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbridge.privacy import Subject, SubjectError, batch_id, parse_subject, read_subjects
from kbridge.privacy.subjects import subject_hash

pytestmark = pytest.mark.unit


KEY = b"k" * 32


def test_parse_tells_emails_from_phone_numbers() -> None:
    assert parse_subject(" Ann@Example.com ") == Subject(email="Ann@Example.com")
    assert parse_subject("+15005550006") == Subject(phone_number="+15005550006")
    with pytest.raises(SubjectError, match="not a valid email"):
        parse_subject("ann")
    with pytest.raises(SubjectError, match=r"E\.164"):
        parse_subject("+1 500 555")
    with pytest.raises(SubjectError, match="needs an email or a phone"):
        Subject()


def test_email_variants_are_as_given_then_lower_case() -> None:
    assert Subject(email="Ann@Example.com").email_variants() == [
        "Ann@Example.com",
        "ann@example.com",
    ]
    assert Subject(email="ann@example.com").email_variants() == ["ann@example.com"]
    assert Subject(phone_number="+15005550006").email_variants() == []


def test_hashes_are_keyed_case_insensitive_for_email_and_hide_the_address() -> None:
    one = subject_hash(KEY, Subject(email="Ann@Example.com"))
    assert one == subject_hash(KEY, Subject(email="ann@example.com"))
    assert one != subject_hash(b"x" * 32, Subject(email="ann@example.com"))
    assert one != subject_hash(KEY, Subject(email="ann@example.com", phone_number="+15005550006"))
    assert len(one) == 64
    assert "ann" not in one


def test_a_batch_id_depends_on_the_set_of_subjects_and_the_action() -> None:
    assert batch_id("delete", ["b", "a"]) == batch_id("delete", ["a", "b", "a"])
    assert batch_id("delete", ["a"]) != batch_id("delete", ["a", "b"])
    assert batch_id("delete", ["a"]) != batch_id("access", ["a"])


def test_a_csv_with_a_header_reads_email_and_phone_columns(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "\ufeffName,Email,Phone\nAnn,ann@example.com,\nBob,,+15005550006\n,,\nCy,c@x.io,+15005550007\n"
    )
    assert read_subjects(path) == [
        Subject(email="ann@example.com"),
        Subject(phone_number="+15005550006"),
        Subject(email="c@x.io", phone_number="+15005550007"),
    ]


def test_a_csv_without_a_header_is_one_identifier_a_line(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("ann@example.com\n\n+15005550006\n")
    assert read_subjects(path) == [
        Subject(email="ann@example.com"),
        Subject(phone_number="+15005550006"),
    ]
    (tmp_path / "empty.csv").write_text("")
    assert read_subjects(tmp_path / "empty.csv") == []


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(SubjectError, match="cannot read"):
        read_subjects(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("email,phone\nann@example.com,\nnot-an-email,\n")
    with pytest.raises(SubjectError, match=r"bad.csv, line 3: .*not a valid email"):
        read_subjects(bad)
    blank = tmp_path / "blank.csv"
    blank.write_text("email,phone,name\n,,Ann\n")
    with pytest.raises(SubjectError, match="line 2: no email or phone"):
        read_subjects(blank)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x00garbage")
    with pytest.raises(SubjectError, match="not a UTF-8 CSV"):
        read_subjects(binary)


@pytest.mark.parametrize(
    "address", ["josé@example.com", "Zoë.Ünal@example.de", "用户@example.com", "андрей@example.ru"]
)
def test_internationalised_local_parts_are_subjects_as_klaviyo_stores_them(address: str) -> None:
    assert parse_subject(address) == Subject(email=address)
    key = b"k" * 32
    assert subject_hash(key, Subject(email=address)) == subject_hash(
        key, Subject(email=address.upper())
    )


@pytest.mark.parametrize(
    "garbage",
    ["jo sé@example.com", "josé@@example.com", "josé", "jo\u200bsé@example.com", "😀@example.com",
     "josé@example", "jo\x00sé@example.com", "josé@exa mple.com"],
)  # fmt: skip
def test_garbage_is_still_not_a_subject(garbage: str) -> None:
    with pytest.raises(SubjectError, match="not a valid email"):
        parse_subject(garbage)
