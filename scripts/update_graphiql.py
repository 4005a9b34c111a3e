"""Refresh the GraphiQL assets served at /graphiql/ from the npm registry (through `npm pack`).

GraphiQL must load where unpkg.com and other CDNs cannot be reached, so its production builds
ship inside the package (src/static/graphiql/vendor/) with their licences and a manifest of
versions and checksums. To move to newer versions, change PACKAGES and run

    .venv/bin/python scripts/update_graphiql.py          # fetch, unpack, rewrite the manifest
    .venv/bin/python scripts/update_graphiql.py --check  # files match the manifest (offline)

then run tests/test_graphiql_browser.py, which loads the page in Chromium with every other
origin blocked. GraphiQL 3.8 is the last release with a UMD build (4 and later are ES modules
built for a bundler), which is what lets the page load plain <script> files from its own origin.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "src" / "static" / "graphiql" / "vendor"
MANIFEST = VENDOR / "manifest.json"

# npm package -> (version, {file in the package: name here}). The explorer plugin's version
# must match the @graphiql/react inside graphiql's build (3.8.3 bundles 0.28).
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "react": ("18.3.1", {"umd/react.production.min.js": "react.production.min.js"}),
    "react-dom": ("18.3.1", {"umd/react-dom.production.min.js": "react-dom.production.min.js"}),
    "graphiql": (
        "3.8.3",
        {"graphiql.min.js": "graphiql.min.js", "graphiql.min.css": "graphiql.min.css"},
    ),
    "@graphiql/plugin-explorer": (
        "3.2.5",
        {"dist/index.umd.js": "plugin-explorer.umd.js", "dist/style.css": "plugin-explorer.css"},
    ),
    "graphql-ws": ("6.4.2", {"umd/graphql-ws.min.js": "graphql-ws.min.js"}),
}
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license")
# A package that ships no licence text: the text of the repository it is published from.
LICENCE_FROM = {"@graphiql/plugin-explorer": "graphiql"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def licence_name(package: str) -> str:
    return package.replace("@", "").replace("/", "-") + ".LICENSE.txt"


def fetch() -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    (VENDOR / "licenses").mkdir(exist_ok=True)
    manifest: dict[str, object] = {}
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package, (version, files) in PACKAGES.items():
            packed = subprocess.run(
                ["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            )
            info = json.loads(packed.stdout)[0]
            with tarfile.open(Path(tmp) / info["filename"]) as tar:
                members = {m.name.removeprefix("package/"): m for m in tar.getmembers()}
                for inside, here in files.items():
                    data = tar.extractfile(members[inside])
                    assert data is not None, inside
                    (VENDOR / here).write_bytes(data.read())
                licence = next((members[n] for n in LICENCE_FILES if n in members), None)
                if licence is not None:
                    data = tar.extractfile(licence)
                    assert data is not None
                    texts[package] = data.read().decode()
                package_json = json.loads(tar.extractfile(members["package.json"]).read())  # type: ignore[union-attr]
            manifest[package] = {
                "version": version,
                "license": package_json.get("license"),
                "integrity": info.get("integrity"),
                "files": {
                    here: {"from": inside, "sha256": sha256(VENDOR / here)}
                    for inside, here in files.items()
                },
                "licenseFile": f"licenses/{licence_name(package)}",
            }
            print(f"{package}@{version}: {', '.join(files.values())}")
    for package in PACKAGES:
        text = texts.get(package)
        if text is None:
            source = LICENCE_FROM[package]
            text = (
                f"{package} is published under the {manifest[package]['license']} licence "  # type: ignore[index]
                f"from the same repository as {source}, whose licence text follows.\n\n"
                + texts[source]
            )
        (VENDOR / "licenses" / licence_name(package)).write_text(text)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {MANIFEST}")


def check() -> list[str]:
    """What differs from the manifest (empty when everything matches)."""
    problems = []
    manifest = json.loads(MANIFEST.read_text())
    if set(manifest) != set(PACKAGES):
        problems.append("the manifest lists other packages than PACKAGES")
    for package, entry in manifest.items():
        if package in PACKAGES and entry["version"] != PACKAGES[package][0]:
            problems.append(
                f"{package}: manifest {entry['version']}, PACKAGES {PACKAGES[package][0]}"
            )
        if not (VENDOR / entry["licenseFile"]).is_file():
            problems.append(f"{package}: no licence file")
        for name, file in entry["files"].items():
            path = VENDOR / name
            if not path.is_file() or sha256(path) != file["sha256"]:
                problems.append(f"{package}: {name} differs from the manifest")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare files with the manifest")
    args = parser.parse_args()
    if args.check:
        problems = check()
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    fetch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
