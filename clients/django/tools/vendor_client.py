"""Copies ``@jetchat/client``'s build into the package's static files, so a Django page loads
the client from its own site (``{% jetchat_client %}``): no CDN, no bundler, no npm for the
Django project.

The client is jetchat's own (``clients/js``); its build is ``tsc``'s ES modules
(``clients/js/dist``: one module per source file, relative imports, no dependency in a
browser), which a browser loads as they are. ``python tools/vendor_client.py --build`` runs
``npm ci`` and ``npm run build`` there first; without ``--build`` it copies the dist/ that is
there. ``tests/test_client_static.py`` fails when the committed copy differs from the client's
build (``scripts/test.sh`` builds it before the package's tests).
"""

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parent.parent / "js"
DIST = CLIENT / "dist"
DEST = HERE.parent / "src" / "jetchat_django" / "static" / "jetchat_django" / "client"
#: The modules and their source maps (Django's ManifestStaticFilesStorage wants a module's map
#: when the module names one); the type declarations stay behind.
PATTERNS = ("*.js", "*.js.map")


def files(root: Path) -> dict[str, bytes]:
    """The vendored files under ``root``, by path relative to it."""
    found = {}
    for pattern in PATTERNS:
        for path in root.rglob(pattern):
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def vendor() -> None:
    if not DIST.is_dir():
        raise SystemExit(f"{DIST} is not there: run with --build (or npm run build in clients/js)")
    shutil.rmtree(DEST, ignore_errors=True)
    for name, content in files(DIST).items():
        target = DEST / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    print(f"copied {len(files(DEST))} files from {DIST} to {DEST}", file=sys.stderr)


if __name__ == "__main__":
    if "--build" in sys.argv[1:]:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=CLIENT, check=True)
        subprocess.run(["npm", "run", "build", "--silent"], cwd=CLIENT, check=True)
    vendor()
