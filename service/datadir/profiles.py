"""The certificate profiles a data dir serves: the built-in ones, extended or narrowed by its profiles.toml."""

from __future__ import annotations

import tomllib

from service.ca.profiles import BUILTIN_PROFILES, Profile, parse_profiles
from service.datadir.layout import DataPaths
from service.errors import FileError


def load_profiles(paths: DataPaths) -> dict[str, Profile]:
    """The built-in profiles, extended or narrowed by `<data dir>/profiles.toml` when it exists."""
    if not paths.profiles.exists():
        return dict(BUILTIN_PROFILES)
    try:
        return parse_profiles(tomllib.loads(paths.profiles.read_text()))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise FileError(paths.profiles, str(exc)) from None
