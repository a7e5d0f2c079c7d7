"""The URLs `serve` writes into certificates, recorded in the data dir (urls.json) so that a local `pocketca issue`
writes the same ones."""

from __future__ import annotations

import json

from service.datadir.layout import DataPaths
from service.keys.files import write_public_file
from service.settings import Settings

# the settings `serve` records in the data dir
RECORDED_URLS = ("public_url", "publication_url")


def record_urls(settings: Settings, paths: DataPaths) -> None:
    urls = {name: getattr(settings, name) for name in RECORDED_URLS if name in Settings.model_fields}
    write_public_file(paths.urls, (json.dumps(urls, indent=2) + "\n").encode())


def with_recorded_urls(settings: Settings) -> Settings:
    """The URLs `serve` last used, for those not given to this command by flag or environment."""
    path = DataPaths(settings.data_dir).urls
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return settings
    update = {
        name: value
        for name, value in recorded.items()
        if name in RECORDED_URLS and name in Settings.model_fields and name not in settings.model_fields_set
    }
    return settings.model_copy(update=update) if update else settings
