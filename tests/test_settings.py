"""Settings: init kwargs > environment > TOML file > defaults; bad input is a one-line ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.errors import ConfigError
from advisor.settings import Settings, describe_settings, load_settings


def default(field: str) -> object:
    return Settings.model_fields[field].default


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_apply_when_nothing_is_set(tmp_home: Path) -> None:
    s = load_settings()
    assert s.k == default("k")
    assert s.home == tmp_home  # from ADVISOR_HOME
    assert s.store_dir == tmp_home / "chroma"


def test_priority_init_over_env_over_toml_over_defaults(
    tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    k_default = default("k")
    k_toml, k_env, k_init = k_default + 2, k_default + 4, k_default + 6
    cfg = write_toml(tmp_path / "cfg.toml", f"k = {k_toml}\ncandidates = 11\nmax_tokens = 77\n")
    monkeypatch.setenv("ADVISOR_CONFIG", str(cfg))

    assert load_settings().k == k_toml  # TOML beats the default
    monkeypatch.setenv("ADVISOR_K", str(k_env))
    monkeypatch.setenv("ADVISOR_CANDIDATES", "13")
    s = load_settings()
    assert s.k == k_env  # env beats TOML
    assert s.candidates == 13
    assert s.max_tokens == 77  # TOML still supplies what env does not set
    s = load_settings(k=k_init)
    assert s.k == k_init  # init kwargs beat env
    assert s.candidates == 13
    # None means "not given" (an unset CLI option) and falls through to env
    assert load_settings(k=None).k == k_env


def test_advisor_toml_in_advisor_home_is_read(tmp_home: Path) -> None:
    write_toml(tmp_home / "advisor.toml", 'collection = "from-home-file"\n')
    assert load_settings().collection == "from-home-file"


# Regression: advisor.toml in an explicitly passed home used to be ignored.
def test_advisor_toml_in_an_explicit_home_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    default_home = xdg / "advisor"
    default_home.mkdir(parents=True)
    write_toml(default_home / "advisor.toml", 'collection = "default-home"\n')
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    write_toml(explicit / "advisor.toml", 'collection = "explicit-home"\n')
    assert load_settings(home=explicit).collection == "explicit-home"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"ADVISOR_K": "0"}, "k"),
        ({"ADVISOR_K": "many"}, "k"),
        ({"ADVISOR_K": "51"}, "k"),
        ({"ADVISOR_N_CTX": "16"}, "n_ctx"),
        ({"ADVISOR_MMR_LAMBDA": "1.5"}, "mmr_lambda"),
        ({"ADVISOR_HYBRID": "perhaps"}, "hybrid"),
        ({"ADVISOR_TIMEOUT": "0"}, "timeout"),
        ({"ADVISOR_CORPUS": '["unclosed'}, "corpus"),
    ],
)
def test_bad_environment_values_are_one_line_config_errors(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert field in message
    assert info.value.exit_code == ConfigError.exit_code


def test_a_bad_item_of_a_list_setting_names_the_variable_that_holds_it(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADVISOR_CORPUS", '["~/notes", 3]')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "'corpus.1'" in str(info.value)  # which item
    assert "check ADVISOR_CORPUS," in str(info.value)  # the variable there is, not ADVISOR_CORPUS.1


def test_corpus_from_the_environment_is_a_path_list_like_path(
    tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    write_toml(tmp_home / "advisor.toml", 'corpus = ["~/from-toml"]\n')  # a config file is present too
    assert load_settings().corpus == [Path("~/from-toml").expanduser()]
    for value, expected in [
        (str(tmp_path / "notes"), [tmp_path / "notes"]),
        (f"{tmp_path / 'a'}{os.pathsep}~/b{os.pathsep}", [tmp_path / "a", Path("~/b").expanduser()]),
        (f" {tmp_path / 'a'} {os.pathsep} ~/b ", [tmp_path / "a", Path("~/b").expanduser()]),  # spaces around
        (f'["{tmp_path / "c"}", "{tmp_path / "d"}"]', [tmp_path / "c", tmp_path / "d"]),
    ]:
        monkeypatch.setenv("ADVISOR_CORPUS", value)
        assert load_settings().corpus == expected, value


def test_bad_init_value_is_a_config_error(tmp_home: Path) -> None:
    with pytest.raises(ConfigError, match="k"):
        load_settings(k=-3)


def test_unknown_key_in_toml_is_a_config_error(tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_toml(tmp_path / "cfg.toml", "kk = 3\n")
    monkeypatch.setenv("ADVISOR_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "kk" in str(info.value) and "\n" not in str(info.value)


def test_toml_syntax_error_is_a_config_error(tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_toml(tmp_path / "cfg.toml", "k = = 3\n[[[\n")
    monkeypatch.setenv("ADVISOR_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_missing_config_file_is_a_config_error(tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope" / "advisor.toml"
    monkeypatch.setenv("ADVISOR_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(missing) in str(info.value)
    assert "ADVISOR_CONFIG" in str(info.value)


def test_home_expands_user(tmp_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings(home="~/data").home == tmp_path / "data"


def test_describe_settings_names_where_each_value_came_from(
    tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_toml(tmp_path / "cfg.toml", "k = 9\ncandidates = 11\nmax_tokens = 77\n")
    monkeypatch.setenv("ADVISOR_CONFIG", str(cfg))
    monkeypatch.setenv("ADVISOR_CANDIDATES", "13")
    s = load_settings(k=3)
    rows = {r["name"]: r for r in describe_settings(s, k=3)}
    assert set(rows) == set(Settings.model_fields)
    assert (rows["k"]["value"], rows["k"]["source"]) == (3, "argument")
    assert (rows["candidates"]["value"], rows["candidates"]["source"]) == (13, "env")
    assert (rows["max_tokens"]["value"], rows["max_tokens"]["source"]) == (77, f"file {cfg}")
    assert (rows["mmr_lambda"]["value"], rows["mmr_lambda"]["source"]) == (default("mmr_lambda"), "default")
    assert rows["home"] == {**rows["home"], "value": str(tmp_home), "source": "env"}
    assert all(r["description"] for r in rows.values())
