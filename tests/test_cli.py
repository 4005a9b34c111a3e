"""The `qiaoqiao` command explains itself: --version, help for every option with its default,
every command listed; expected failures end in one line without a traceback; `doctor`."""

from __future__ import annotations

import argparse
import fcntl
from importlib import metadata
from pathlib import Path

import asyncpg
import pytest

from src.ai.embeddings import Embedder
from src.cli import HANDLERS, build_parser, main
from src.doctor import plain_dsn
from tests.cli_helpers import cli_env, run_cli
from tests.fakes.wechat import FakeWechat


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"qiaoqiao {metadata.version('qiaoqiao')}\n"


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found[name] = command
                found.update({f"{name} {n}": p for n, p in _commands(command).items()})
    return found


def test_help_lists_every_command_and_explains_every_option() -> None:
    parser = build_parser()
    top = parser.format_help()
    commands = _commands(parser)
    assert set(commands) - {"model"} == set(HANDLERS)
    for name in (n for n in commands if " " not in n):
        assert f"\n    {name}" in top, f"{name} missing from `qiaoqiao --help`"
        assert name in top.split("Commands:")[1], f"{name} missing from the command list"
    assert "--version" in top
    for name, command in commands.items():
        text = command.format_help()
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            label = "/".join(action.option_strings) or action.dest
            assert action.help, f"`qiaoqiao {name}` {label} has no help"
            if action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in " ".join(text.split()), (
                    f"`qiaoqiao {name} --help` does not show the default of {label}"
                )


async def test_seed_demo_says_what_it_added_and_what_was_there(
    database_url: str, tmp_path: Path
) -> None:
    env = cli_env(DATABASE_URL=database_url, DATA_DIR=tmp_path / "data")
    first = await run_cli("seed-demo", "--users", "3", env=env, cwd=tmp_path)
    again = await run_cli("seed-demo", "--users", "3", env=env, cwd=tmp_path)
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        institutions = await conn.fetchval("SELECT count(*) FROM institutions")
    finally:
        await conn.close()
    assert institutions > 100  # the migrations load the starter list
    assert first.out == (
        f"institutions added: 0 ({institutions} in all);"
        " demo users added: 3 of 3 (0 were there already)\n"
    ), first.err
    assert again.out.endswith("demo users added: 0 of 3 (3 were there already)\n")


def _one_line(err: str, command: str) -> str:
    """The message of an expected failure: the last line, after any INFO log lines."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"qiaoqiao {command}: "), err
    return last


async def test_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://qiaoqiao:pw-not-to-be-shown@127.0.0.1:1/qiaoqiao"
    for command in (["migrate"], ["token", "alice"], ["seed"]):
        run = await run_cli(*command, env=cli_env(DATABASE_URL=url), cwd=tmp_path)
        assert run.code == 1
        line = _one_line(run.err, command[0])
        assert "cannot connect to the database at" in line
        assert "127.0.0.1:1/qiaoqiao: connection refused" in line
        assert "Check DATABASE_URL" in line
        assert "pw-not-to-be-shown" not in run.err + run.out


async def test_reindex_no_longer_refuses_a_held_lock(database_url: str, tmp_path: Path) -> None:
    """Issue 18: reindex works beside a running server (through its outbox; see
    tests/test_index_lifecycle.py for a server holding a real index). A lock on a directory
    that holds no index of the current version is no reason to stop."""
    data = tmp_path / "data"
    (data / "vectors").mkdir(parents=True)
    with (data / "vectors" / "profiles.lock").open("ab") as held:  # as a running serve holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        env = cli_env(DATABASE_URL=database_url, DATA_DIR=data)
        run = await run_cli("reindex", env=env, cwd=tmp_path)
    assert run.code == 0, run.err
    assert "indexed users: 0" in run.out


async def test_unknown_user_is_one_line(database_url: str, tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL=database_url, DATA_DIR=tmp_path / "data")
    for who in ("00000000-0000-4000-8000-000000000000", "+8613800000000", "nobody"):
        run = await run_cli("grant-role", who, "moderator", env=env, cwd=tmp_path)
        assert run.code == 1
        line = _one_line(run.err, "grant-role")
        assert who in line


@pytest.fixture(scope="session")
def prepared_model(model_dir: Path) -> Path:
    """The shared test model folder, prepared (once per machine; seconds when it is)."""
    Embedder.from_settings(None, model_dir).load_sync()
    return model_dir


def _lines(out: str) -> dict[str, tuple[str, str]]:
    """`doctor`'s report: check name -> (status, detail)."""
    found = {}
    for line in out.splitlines():
        parts = line.split(maxsplit=2)
        if line.startswith("  ") and len(parts) == 3:
            found[parts[1]] = (parts[0], parts[2])
    return found


async def test_doctor_on_a_healthy_configuration(
    database_url: str, tmp_path: Path, prepared_model: Path, fake_wechat: FakeWechat
) -> None:
    env = cli_env(
        DATABASE_URL=database_url,
        DATA_DIR=tmp_path / "data",
        MODEL_DIR=prepared_model,
        WECHAT_APP_ID=fake_wechat.app_id,
        WECHAT_APP_SECRET=fake_wechat.app_secret,
        WECHAT_API_BASE=fake_wechat.url,
    )
    run = await run_cli("doctor", env=env, cwd=tmp_path)
    assert run.code == 0, run.out + run.err
    report = _lines(run.out)
    assert {name: status for name, (status, _) in report.items()} == {
        "configuration": "ok",
        "database": "ok",
        "vectors": "ok",
        "model": "ok",
        "wechat": "ok",
        "redis": "skip",
    }, run.out
    assert "(latest)" in report["database"][1]
    assert "loads and embeds (384 dims" in report["model"][1]
    assert "app id and secret accepted" in report["wechat"][1]
    assert run.out.endswith("everything checked works\n")
    assert fake_wechat.app_secret not in run.out + run.err


async def test_doctor_on_a_broken_configuration(
    database_url: str, tmp_path: Path, fake_wechat: FakeWechat
) -> None:
    env = cli_env(
        DATABASE_URL="postgresql://qiaoqiao:pw-hidden@127.0.0.1:1/qiaoqiao",
        QDRANT_URL="http://127.0.0.1:1",
        DATA_DIR=tmp_path / "data",
        MODEL_DIR=tmp_path / "no-model",
        WECHAT_APP_ID=fake_wechat.app_id,
        WECHAT_APP_SECRET="wx-wrong-secret",
        WECHAT_API_BASE=fake_wechat.url,
        REDIS_URL="redis://:rd-hidden@127.0.0.1:1/0",
    )
    run = await run_cli("doctor", env=env, cwd=tmp_path)
    assert run.code == 1
    assert "Traceback" not in run.err
    report = _lines(run.out)
    assert report["database"][0] == "FAIL"
    assert "connection refused" in report["database"][1]
    assert report["vectors"] == (
        "FAIL",
        "no Qdrant answers at http://127.0.0.1:1: start it, or fix QDRANT_URL",
    )
    assert report["model"][0] == "warn" and "qiaoqiao model prepare" in report["model"][1]
    assert report["wechat"][0] == "FAIL" and "WECHAT_APP_SECRET" in report["wechat"][1]
    assert report["redis"][0] == "FAIL"
    assert run.out.endswith("4 checks failed: fix what the FAIL lines say\n")
    for secret in ("pw-hidden", "wx-wrong-secret", "rd-hidden"):
        assert secret not in run.out + run.err

    # A database that answers but is behind this code's schema: say to migrate.
    empty = database_url.rsplit("/", 1)[0] + "/postgres"
    env = cli_env(DATABASE_URL=empty, DATA_DIR=tmp_path / "data", MODEL_DIR=tmp_path / "none")
    behind = _lines((await run_cli("doctor", env=env, cwd=tmp_path)).out)
    assert behind["database"][0] == "warn"
    assert "run `qiaoqiao migrate`" in behind["database"][1]


async def test_doctor_with_broken_settings_exits_2(tmp_path: Path) -> None:
    run = await run_cli("doctor", env=cli_env(MAX_TOKENS="many"), cwd=tmp_path)
    assert run.code == 2 and run.out == ""
    assert run.err.splitlines() == [
        "qiaoqiao doctor: 1 problem in the configuration (environment variables, or .env in"
        " the working directory):",
        "  MAX_TOKENS: is not valid: set a whole number ≥ 10, or unset it for the default, 2000",
    ]
