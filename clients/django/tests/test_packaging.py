"""The package as installed from its wheel (scripts/django_package_test.sh builds the wheel with
``python -m build`` and installs it before the tests): everything a project needs is in it."""

from importlib import metadata

import jetchat_django


def test_the_wheel_carries_templates_migrations_commands_and_types():
    files = {str(f) for f in metadata.files("jetchat-django")}
    for needed in [
        "jetchat_django/templates/jetchat_django/open.html",
        "jetchat_django/templates/jetchat_django/open_chat.html",
        "jetchat_django/migrations/0001_initial.py",
        "jetchat_django/management/commands/jetchat_events.py",
        "jetchat_django/templatetags/jetchat.py",
        "jetchat_django/schema/events.py",
        "jetchat_django/schema/commands.py",
    ]:
        assert needed in files, needed
    assert not any(f.startswith(("tests/", "tools/")) for f in files)


def test_the_version_follows_the_contract():
    assert metadata.version("jetchat-django") == jetchat_django.__version__
    assert int(jetchat_django.__version__.split(".")[0]) == jetchat_django.CONTRACT_VERSION
    requires = metadata.requires("jetchat-django")
    assert any(r.startswith("nats-py") for r in requires)
    assert any(r.startswith("Django") for r in requires)
