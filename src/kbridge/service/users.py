"""Dashboard users: add one, check a password, look one up by id.

Passwords are kept only as argon2id hashes (argon2-cffi's encoded form, its
parameters and salt inside). An unknown email costs the same hash as a known
one, so the time a sign-in takes does not tell which emails exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kbridge.service.appdb import AppDatabase
from kbridge.service.errors import ConflictError, NotFoundError, ServiceError
from kbridge.service.models import USER_ROLES, User, Workspace
from kbridge.service.views import _new_id

__all__ = ["USER_ROLES", "UserView", "add_user", "check_password", "normalise_email", "user"]

_hasher = PasswordHasher()
#: verified against when the email is unknown, so both paths cost one argon2 verify
_DUMMY_HASH = _hasher.hash("kbridge: no such user")
_MIN_PASSWORD = 8


@dataclass(frozen=True, slots=True)
class UserView:
    """Who is signed in: never the hash."""

    id: str
    workspace_id: str
    workspace_name: str
    email: str
    role: str


def normalise_email(email: str) -> str:
    """The form emails are stored and looked up in: trimmed and lower-cased."""
    return email.strip().lower()


def _view(row: User, workspace_name: str) -> UserView:
    return UserView(row.id, row.workspace_id, workspace_name, row.email, row.role)


def add_user(appdb: AppDatabase, workspace: str, email: str, password: str, role: str) -> UserView:
    """A new user of the workspace called ``workspace``.

    :class:`ServiceError` for a bad email, role or a password under 8 characters;
    :class:`NotFoundError` for an unknown workspace; :class:`ConflictError` if the
    email is taken.
    """
    email = normalise_email(email)
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise ServiceError("email: give an address such as ana@example.com")
    if role not in USER_ROLES:
        raise ServiceError(f"role: one of {', '.join(USER_ROLES)}")
    if len(password) < _MIN_PASSWORD:
        raise ServiceError(f"password: at least {_MIN_PASSWORD} characters")
    found = appdb.workspace(workspace)
    row = User(
        id=_new_id(),
        workspace_id=found.id,
        email=email,
        password_hash=_hasher.hash(password),
        role=role,
        created_at=appdb.clock.now(),
    )
    try:
        with Session(appdb.engine, expire_on_commit=False) as session, session.begin():
            session.add(row)
    except IntegrityError:
        raise ConflictError(f"a user {email!r} already exists") from None
    return _view(row, found.name)


def check_password(appdb: AppDatabase, email: str, password: str) -> UserView | None:
    """The user whose email and password these are, else ``None`` (never which was wrong)."""
    with Session(appdb.engine) as session:
        found = session.execute(
            select(User, Workspace.name)
            .join(Workspace, Workspace.id == User.workspace_id)
            .where(User.email == normalise_email(email))
        ).first()
    try:
        if found is None:
            _hasher.verify(_DUMMY_HASH, password)
            return None
        _hasher.verify(found[0].password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return _view(found[0], found[1])


def user(appdb: AppDatabase, user_id: str) -> UserView:
    """The user with this id (:class:`NotFoundError` if gone)."""
    with Session(appdb.engine) as session:
        found = session.execute(
            select(User, Workspace.name)
            .join(Workspace, Workspace.id == User.workspace_id)
            .where(User.id == user_id)
        ).first()
    if found is None:
        raise NotFoundError("no such user")
    return _view(found[0], found[1])
