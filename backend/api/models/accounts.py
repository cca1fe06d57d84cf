"""Accounts: credentials in, a user or a token out."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from backend.api.models.base import Answer, Request
from backend.api.models.fields import NewPassword, NewUsername, Password, Username


class Credentials(Request):
    """Other members are ignored."""

    model_config = ConfigDict(extra="ignore")
    username: Username
    password: Password


class NewAccount(Request):
    """Other members are ignored."""

    model_config = ConfigDict(extra="ignore")
    username: NewUsername
    password: NewPassword


class User(Answer):
    id: str = Field(description="The user's id.")
    username: str


class AccessToken(Answer):
    access_token: str = Field(description="A JWT (RS256).")
    token_type: Literal["bearer"]
    expires_in: int = Field(ge=1, description="Seconds.")
