"""The deployment files say what the app needs. (No Docker engine runs here: .ci/run has
compose's parser check every configuration and hadolint lint the Dockerfile; these tests check
what those tools cannot know.)"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from src.config import Settings, SettingsInvalid, get_settings

ROOT = Path(__file__).resolve().parent.parent


def _compose(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / name).read_text())


def test_qdrant_server_matches_the_client() -> None:
    """qdrant-client accepts servers at most one minor version apart; the compose file names
    the server release of the same version."""
    image = _compose("docker-compose.yml")["services"]["qdrant"]["image"]
    server = re.fullmatch(r"qdrant/qdrant:v(\d+)\.(\d+)\.\d+", image)
    assert server, image
    client = metadata.version("qdrant-client").split(".")[:2]
    assert list(server.groups()) == client


def _interpolated(name: str) -> set[str]:
    """Variables compose must be given for this file (`${NAME}` without a default)."""
    text = (ROOT / name).read_text()
    return {m.group(1) for m in re.finditer(r"\$\{([A-Z0-9_]+)(?::?\?[^}]*)?\}", text)}


def test_development_stack_needs_only_the_readmes_line() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _interpolated("docker-compose.yml") == {"POSTGRES_PASSWORD"}
    assert "POSTGRES_PASSWORD" in readme.split("## Deployment")[1]
    services = _compose("docker-compose.yml")["services"]
    app, migrate = services["app"], services["migrate"]
    assert app["environment"]["APP_ENV"] == "development"  # development login, no credentials
    assert "env_file" not in app
    assert "--no-migrate" in app["command"] and migrate["command"] == ["qiaoqiao", "migrate"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def _production_block() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    block = text.split("# ---- production")[1].split("# ---- ")[0]
    return set(re.findall(r"^# ([A-Z0-9_]+)=", block, re.M))


def _required_in_production(monkeypatch: pytest.MonkeyPatch, **given: str) -> set[str]:
    """Every variable production names as missing, given only `given`."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in {"APP_ENV": "production", **given}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        get_settings()
    except SettingsInvalid as exc:
        return {v for p in exc.problems for v in p.variables.split(", ")}
    return set()


def test_env_example_lists_every_variable_production_requires(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    required = _required_in_production(monkeypatch) | _required_in_production(
        monkeypatch, SMS_PROVIDER="tencent"
    )
    assert {"SECRET_KEY", "WECHAT_APP_ID", "TENCENT_SMS_TEMPLATE_ID"} <= required
    listed = _production_block()
    assert required <= listed, f"missing from .env.example: {required - listed}"
    readme = (ROOT / "README.md").read_text()
    for name in required:
        assert name in readme, f"{name} is not in the README"
    production = _compose("docker-compose.production.yml")["services"]
    for service in ("app", "migrate"):
        assert production[service]["env_file"] == ".env"
        assert production[service]["environment"]["APP_ENV"] == "production"


def test_image_runs_unprivileged_with_a_health_check_and_its_model() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    assert "/ready" in (ROOT / "Dockerfile").read_text()
    prepare = lines.index("RUN qiaoqiao model prepare")
    assert any(line.startswith("ENV MODEL_DIR=") for line in lines[:prepare])
    assert lines.index(f"USER {users[-1]}") < prepare  # the model belongs to the app's user


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern decides; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        glob = pattern.replace("**/", "*")
        if any(fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_venvs_data_secrets_and_caches_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept_out in (
        ".venv/bin/python",
        ".venv-schemathesis/x",
        ".qiaoqiao/pg/PG_VERSION",
        ".qiaoqiao/models/m/model.onnx",
        ".env",
        ".env.production",
        ".git/config",
        "src/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/v",
        ".ruff_cache/x",
        "tests/test_cli.py",
        "bench/results/x.json",
    ):
        assert _ignored(kept_out, patterns), kept_out
    for needed in (
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "alembic.ini",
        "migrations/env.py",
        "src/cli.py",
    ):
        assert not _ignored(needed, patterns), needed


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint absent (.ci/run has it)")
def test_dockerfile_passes_hadolint() -> None:
    found = subprocess.run(
        ["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, found.stdout


def test_the_project_stands_alone() -> None:
    """docs/security.md states the properties it proves; nothing points outside the project
    (the API contract check in .ci/run, informational, is the one exception)."""
    security = (ROOT / "docs" / "security.md").read_text()
    stated = security.split("# The properties")[1].split("# The proofs")[0]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", stated, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 37
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "src").rglob("*.py")]:
        assert "../shared" not in path.read_text(), path
