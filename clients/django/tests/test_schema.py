"""The types cannot drift from jetchat: they are generated from docs/schemas, and what the
package publishes validates against those schemas."""

import importlib.util
import inspect
import json
from pathlib import Path

import jsonschema
import pytest

from jetchat_django import commands, signals
from jetchat_django.schema import events as event_types

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE.parent.parent.parent / "docs" / "schemas"


def generator():
    path = HERE.parent / "tools" / "gen_schema.py"
    spec = importlib.util.spec_from_file_location("gen_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_types_are_what_the_schemas_give():
    gen = generator()
    for name, text in gen.generate().items():
        committed = (gen.OUT / name).read_text()
        assert committed == text, (
            f"src/jetchat_django/schema/{name} is out of date: run `python tools/gen_schema.py`")


def test_the_installed_types_are_the_committed_ones():
    """The wheel carries the generated modules as they are in the repository."""
    gen = generator()
    installed = Path(event_types.__file__).parent
    for name in gen.MODULES:
        assert (installed / name).read_text() == (gen.OUT / name).read_text(), name


def test_every_event_type_has_its_signal():
    schema = json.loads((SCHEMAS / "event.json").read_text())
    kinds = {entry["properties"]["type"]["const"] for entry in schema["oneOf"]}
    assert set(signals.BY_TYPE) == kinds


@pytest.mark.parametrize("build, fields", [
    (commands.build_send_message, dict(sender_id=1, chat_id=2, content="hi", client_msg_id="c")),
    (commands.build_send_message, dict(sender_id=1, receiver_id=2, content="hi",
                                       content_type="image", file_url="https://x/y.png")),
    (commands.build_create_chat, dict(creator_id=1, member_ids=[2, 3], name="Team")),
    (commands.build_create_chat, dict(creator_id=1, member_ids=[2], is_group=False)),
    (commands.build_add_members, dict(chat_id=1, user_ids=[2])),
    (commands.build_remove_members, dict(chat_id=1, user_ids=[2])),
    (commands.build_rename_chat, dict(chat_id=1, name="New")),
    (commands.build_delete_message, dict(chat_id=1, message_id=9)),
    (commands.build_mute_chat, dict(chat_id=1, user_id=2)),
    (commands.build_mute_chat, dict(chat_id=1, user_id=2, until=None)),
    (commands.build_upsert_user, dict(user_id=1, display_name="Ann", avatar_url="https://a/b")),
    (commands.build_erase_user, dict(user_id=1)),
    (commands.build_add_members, dict(chat_id=1, user_ids=[2], actor_id=3)),
    (commands.build_leave_chat, dict(chat_id=1, user_id=2)),
    (commands.build_update_chat, dict(chat_id=1, name="New")),
    (commands.build_update_chat, dict(chat_id=1, settings={"members_can_add": True}, actor_id=2)),
    (commands.build_set_member_role, dict(chat_id=1, user_id=2, role="admin")),
    (commands.build_delete_chat, dict(chat_id=1, actor_id=2)),
    (commands.build_edit_message, dict(chat_id=1, message_id=9, editor_id=2, content="fixed")),
    (commands.build_react, dict(chat_id=1, message_id=9, user_id=2, emoji="👍")),
    (commands.build_unreact, dict(chat_id=1, message_id=9, user_id=2, emoji="👍")),
    (commands.build_pin_message, dict(chat_id=1, message_id=9)),
    (commands.build_pin_message, dict(chat_id=1, message_id=9, pinned=False, actor_id=2)),
    (commands.build_mark_read, dict(chat_id=1, user_id=2, message_id=9)),
    (commands.build_mark_delivered, dict(chat_id=1, user_id=2, message_id=9)),
    (commands.build_set_block, dict(user_id=1, blocked_id=2)),
    (commands.build_set_block, dict(user_id=1, blocked_id=2, blocked=False)),
])
def test_each_command_validates_against_command_json(build, fields):
    schema = json.loads((SCHEMAS / "command.json").read_text())
    command = build(**fields)
    jsonschema.validate(command.payload, schema)
    kind = command.payload["type"]
    definition = next(e["$ref"].rsplit("/", 1)[-1] for e in schema["oneOf"]
                      if e["properties"]["type"]["const"] == kind)
    # oneOf alone would accept unknown keys; a typo in a field name must fail here.
    known = set(schema["$defs"][definition]["properties"]) | {"type"}
    assert set(command.payload) <= known, set(command.payload) - known


def test_every_command_django_may_send_has_a_function():
    """A command added to command.json fails here until the package wraps it (or names it
    jetchat's own)."""
    import jetchat_django

    schema = json.loads((SCHEMAS / "command.json").read_text())
    kinds = {entry["properties"]["type"]["const"] for entry in schema["oneOf"]}
    jetchats_own = {"delivered_marks", "push_due", "register_upload"}
    functions = [getattr(jetchat_django, name) for name in jetchat_django.__all__]
    wrapped = {f.command_type for f in functions if hasattr(f, "command_type")}
    assert kinds - jetchats_own == wrapped
    sync = {f.__name__ for f in functions
            if hasattr(f, "command_type") and not inspect.iscoroutinefunction(f)}
    asynchronous = {f.__name__ for f in functions if inspect.iscoroutinefunction(f)}
    assert {f"a{name}" for name in sync} == asynchronous  # each in sync and async code


def test_an_update_with_nothing_to_change_is_refused_before_publishing():
    with pytest.raises(ValueError, match="name or settings"):
        commands.build_update_chat(chat_id=1)
