"""Cleans raw records: keeps the expected fields and normalises the text."""

from typing import Any

REQUIRED_FIELDS = ("userId", "id", "title", "body")


def clean_records(records: list[dict[str, Any]], min_body_length: int = 0) -> list[dict[str, Any]]:
    """Drops records missing a field or with a short body; collapses whitespace in the text."""
    cleaned = []
    for record in records:
        if any(field not in record for field in REQUIRED_FIELDS):
            continue
        body = " ".join(str(record["body"]).split())
        if len(body) < min_body_length:
            continue
        cleaned.append(
            {
                "user_id": int(record["userId"]),
                "id": int(record["id"]),
                "title": " ".join(str(record["title"]).split()),
                "body": body,
            }
        )
    return cleaned
