"""Compile locale/*/LC_MESSAGES/django.po into django.mo in pure Python (no GNU gettext needed).

Django's compilemessages needs the msgfmt program; this command writes the same GNU .mo format with
the standard library, so `make messages` works on a machine without gettext. Supports what our
catalogs use: msgctxt, msgid, msgstr, multi-line strings and the usual escapes (no plural forms).
Fuzzy entries and empty translations are left out, as msgfmt does.
"""
from __future__ import annotations

import ast
import struct
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def parse_po(text: str) -> dict[str, str]:
    """{"ctxt\\x04msgid" or "msgid": msgstr} of the translated, non-fuzzy entries (the header under "")."""
    catalog: dict[str, str] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        current = None
        fuzzy = False
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            if not line or line.startswith("#"):
                continue
            if line.startswith('"'):
                if current is None:
                    raise ValueError(f"a string outside an entry: {line[:60]}")
                fields[current] += ast.literal_eval(line)
                continue
            keyword, _, value = line.partition(" ")
            if keyword not in ("msgctxt", "msgid", "msgstr"):
                raise ValueError(f"unsupported line (plural forms are not supported): {line[:60]}")
            current = keyword
            fields[keyword] = ast.literal_eval(value)
        if "msgid" not in fields or fuzzy and fields["msgid"]:
            continue
        if fields.get("msgstr"):
            key = f"{fields['msgctxt']}\x04{fields['msgid']}" if "msgctxt" in fields else fields["msgid"]
            catalog[key] = fields["msgstr"]
    return catalog


def mo_bytes(catalog: dict[str, str]) -> bytes:
    """The GNU .mo file of `catalog` (little-endian, sorted keys, no hash table)."""
    keys = sorted(catalog)
    ids = [key.encode() for key in keys]
    strs = [catalog[key].encode() for key in keys]
    count = len(keys)
    key_table_at = 7 * 4
    value_table_at = key_table_at + count * 8
    data_at = value_table_at + count * 8
    offsets, data = [], b""
    for blob in ids + strs:
        offsets.append((len(blob), data_at + len(data)))
        data += blob + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, key_table_at, value_table_at, 0, 0)
    tables = b"".join(struct.pack("<2I", *pair) for pair in offsets)
    return header + tables + data


class Command(BaseCommand):
    help = "Compile every locale/<lang>/LC_MESSAGES/django.po into django.mo (pure Python; no msgfmt)."

    def handle(self, *args, **opts):
        po_files = sorted(path for root in settings.LOCALE_PATHS for path in Path(root).glob("*/LC_MESSAGES/*.po"))
        if not po_files:
            raise CommandError(f"no .po files under {', '.join(map(str, settings.LOCALE_PATHS))}")
        for po in po_files:
            try:
                catalog = parse_po(po.read_text(encoding="utf-8"))
            except (ValueError, SyntaxError) as exc:
                raise CommandError(f"{po}: {exc}") from None
            po.with_suffix(".mo").write_bytes(mo_bytes(catalog))
            self.stdout.write(f"{po.with_suffix('.mo')}: {len(catalog) - ('' in catalog)} messages")
