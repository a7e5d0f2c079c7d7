"""One declaration per setting: the Settings field is the variable, the flag and its help."""

from __future__ import annotations

from pathlib import Path

from service.cli import build_parser
from service.settings import ClientSettings, Settings, flag, variable


def test_every_setting_has_a_description_and_a_serve_flag() -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    flags = {option: action for action in serve._actions for option in action.option_strings}
    for name, info in Settings.model_fields.items():
        assert info.description, f"Settings.{name} needs a description: it is the flag's help"
        action = flags[flag(name)]
        assert action.dest == name and variable(name) in (action.help or "") and info.description in (action.help or "")


def test_client_settings_come_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("POCKETCA_SERVER", "https://ca.example:8443")
    monkeypatch.setenv("POCKETCA_TOKEN", "pca_x")
    defaults = ClientSettings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.server == "https://ca.example:8443"
    assert defaults.token is not None and defaults.token.get_secret_value() == "pca_x"
    assert "pca_x" not in repr(defaults)


def test_the_acme_identifier_policy_lists_parse_and_the_readme_lists_their_defaults() -> None:
    from service.ca.identifiers import DEFAULT_ALLOW, DEFAULT_DENY

    settings = Settings(_env_file=None, acme_allow=".corp.example, 10.0.0.0/8", acme_deny="")  # type: ignore[call-arg]
    assert settings.acme_allow == [".corp.example", "10.0.0.0/8"] and settings.acme_deny == []
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.acme_allow == list(DEFAULT_ALLOW) and defaults.acme_deny == list(DEFAULT_DENY)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    security = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    assert ",".join(DEFAULT_ALLOW) in security and ",".join(DEFAULT_DENY) in security
