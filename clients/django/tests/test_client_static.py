"""The client a Django page loads is ``@jetchat/client`` as its sources build it, and the wheel
carries it."""

import importlib.util
from pathlib import Path

import pytest

import jetchat_django

HERE = Path(__file__).resolve().parent


def vendoring():
    path = HERE.parent / "tools" / "vendor_client.py"
    spec = importlib.util.spec_from_file_location("vendor_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_client_is_the_clients_build():
    tool = vendoring()
    if not tool.DIST.is_dir():
        pytest.skip("clients/js is not built (npm run build there; scripts/test.sh does)")
    assert tool.files(tool.DEST) == tool.files(tool.DIST), (
        "src/jetchat_django/static/jetchat_django/client differs from clients/js/dist: "
        "run `python tools/vendor_client.py --build` and commit the result")


def test_the_installed_package_carries_the_client():
    tool = vendoring()
    installed = Path(jetchat_django.__file__).parent / "static" / "jetchat_django"
    assert tool.files(installed / "client") == tool.files(tool.DEST)
    assert "index.js" in tool.files(installed / "client")
    for module in ("jetchat-django.js", "chat-page.js"):
        assert (installed / module).read_bytes() == (tool.DEST.parent / module).read_bytes()
