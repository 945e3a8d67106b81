#!/usr/bin/env python3
"""Fills a database with the million messages docs/database.md measures on.

1,000 group chats of 10 members each among users 1..1000 (about 10 chats per user),
1,000,000 messages spread evenly over the chats, each of 3 to 20 words drawn from a
vocabulary of 20,000 made-up words with Zipf frequencies (word rank r has weight 1/r), so
some words are in most messages and most are rare. Seeded: every run makes the same data.

  sqlite PATH   into a SQLite database `jetchat migrate` made (the triggers fill the
                search index as the rows go in)
  csv DIR       chats.csv, chat_members.csv and messages.csv for PostgreSQL's \\copy
                (see docs/database.md)
"""

import csv
import itertools
import os
import random
import sqlite3
import sys
from datetime import datetime, timedelta, timezone

CHATS, MEMBERS, USERS, MESSAGES, VOCABULARY = 1_000, 10, 1_000, 1_000_000, 20_000
START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def words(rng):
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    seen, vocabulary = set(), []
    while len(vocabulary) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    return vocabulary


def rows():
    rng = random.Random(12)
    vocabulary = words(rng)
    weights = list(itertools.accumulate(1 / rank for rank in range(1, VOCABULARY + 1)))
    chats = [(c, f"chat {c}", rng.sample(range(1, USERS + 1), MEMBERS)) for c in range(1, CHATS + 1)]
    messages = []
    for i in range(1, MESSAGES + 1):
        chat_id, _, members = chats[rng.randrange(CHATS)]
        text = " ".join(rng.choices(vocabulary, cum_weights=weights, k=rng.randint(3, 20)))
        at = (START + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S+00:00")
        messages.append((i, chat_id, rng.choice(members), text, "text", f"m{i}", at, i))
    return vocabulary, chats, messages


def main():
    kind, where = sys.argv[1], sys.argv[2]
    vocabulary, chats, messages = rows()
    start = START.strftime("%Y-%m-%d %H:%M:%S+00:00")
    chat_rows = [(c, name, True, members[0], start) for c, name, members in chats]
    member_rows = [(c, u, start) for c, _, members in chats for u in members]
    if kind == "sqlite":
        db = sqlite3.connect(where)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO chats (id, name, is_group, created_by, created_at) VALUES (?,?,?,?,?)",
            chat_rows)
        db.executemany(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?,?,?)", member_rows)
        db.executemany(
            "INSERT INTO messages (id, chat_id, sender_id, content, content_type, client_msg_id,"
            " created_at, stream_seq) VALUES (?,?,?,?,?,?,?,?)", messages)
        db.commit()
        db.execute("ANALYZE")
        db.close()
    else:
        os.makedirs(where, exist_ok=True)
        for name, data in [("chats", chat_rows), ("chat_members", member_rows),
                           ("messages", messages)]:
            with open(os.path.join(where, f"{name}.csv"), "w", newline="") as f:
                csv.writer(f).writerows(data)
    print("words by rank:", {r: vocabulary[r - 1] for r in (1, 10, 100, 1000, 10000)})
    print("user 1 is in chats", sorted(c for c, _, m in chats if 1 in m), file=sys.stderr)


if __name__ == "__main__":
    main()
