"""``poe2openai keys create|list|revoke``: manage proxy keys from the command line.

The running server picks changes up by itself (within ``CONFIG_RELOAD_INTERVAL``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..jsonlib import dumps_str
from ..settings import SettingsError, load_settings
from .keyfile import (
    FILE_NAME,
    KeyError_,
    KeyRecord,
    create_key,
    parse_expiry,
    read_keys,
    revoke_key,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poe2openai keys",
        description=f"Manage proxy keys (kept in $CONFIG_DIR/{FILE_NAME}). While any key "
                    "exists, every API request needs one, and the server uses its own "
                    "POE_API_KEY upstream.")
    parser.add_argument("--config-dir", type=Path,
                        help="folder of the keys file (default: $CONFIG_DIR, else "
                             "$XDG_CONFIG_HOME/poe2openai or ~/.config/poe2openai)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = sub.add_parser("create", help="create a key and print its secret (once)")
    create.add_argument("name", help="a name for the key: a person, a team, an app")
    create.add_argument("--models", nargs="+", metavar="MODEL",
                        help="models it may use: names or globs like 'claude-*' (default: all)")
    create.add_argument("--rpm", type=int, default=0, help="requests per minute (0: no limit)")
    create.add_argument("--concurrency", type=int, default=0,
                        help="requests at the same time (0: no limit)")
    create.add_argument("--daily", type=int, default=0,
                        help="requests per UTC day (0: no limit)")
    create.add_argument("--expires", metavar="DATE",
                        help="YYYY-MM-DD (valid through that UTC day), an ISO date-time, "
                             "or 30d / 12h from now")
    create.add_argument("--json", action="store_true", help="print the key as JSON")

    lst = sub.add_parser("list", help="list the keys (never their secrets)")
    lst.add_argument("--json", action="store_true", help="print JSON")

    revoke = sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    return parser


def _limit(value: int | None) -> str:
    return str(value) if value else "-"


def _table(records: list[KeyRecord]) -> str:
    now = time.time()
    rows = [("NAME", "STATE", "MODELS", "RPM", "CONC", "DAILY", "EXPIRES", "CREATED", "HINT")]
    for r in records:
        rows.append((r.name, r.state(now), ",".join(r.models) or "*", _limit(r.rpm),
                     _limit(r.concurrency), _limit(r.daily),
                     (r.public()["expires"] or "-"), r.public()["created"] or "-",
                     (r.hint + "…") if r.hint else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.config_dir is not None:
        folder = args.config_dir.expanduser()
    else:
        try:
            folder = load_settings(os.environ).config_dir
        except SettingsError as exc:
            print(f"poe2openai: bad setting {exc}", file=sys.stderr)
            return 2
    path = folder / FILE_NAME
    try:
        if args.command == "create":
            expires = parse_expiry(args.expires) if args.expires else None
            record, secret = create_key(path, args.name, models=args.models, rpm=args.rpm,
                                        concurrency=args.concurrency, daily=args.daily,
                                        expires=expires)
            if args.json:
                print(dumps_str({**record.public(), "key": secret}))
            else:
                print(secret)
                print(f"Created key {record.name!r} in {path}. This is the only time its "
                      "secret is shown: give it to its user now.", file=sys.stderr)
        elif args.command == "list":
            records = read_keys(path)
            if args.json:
                print(dumps_str([r.public() for r in records]))
            elif records:
                print(_table(records))
            else:
                print(f"No proxy keys in {path}: clients' own Poe keys are passed through.",
                      file=sys.stderr)
        else:
            record = revoke_key(path, args.name)
            print(f"Revoked key {record.name!r}; clients using it get 401 from now on.",
                  file=sys.stderr)
    except KeyError_ as exc:
        print(f"poe2openai keys: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"poe2openai keys: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
