"""Statistics over cleaned records."""

from collections import Counter
from statistics import fmean
from typing import Any

STOP_WORDS = frozenset({"a", "an", "and", "est", "et", "in", "is", "of", "on", "the", "to", "ut"})


def analyze(records: list[dict[str, Any]], top_words: int = 5) -> dict[str, Any]:
    """Counts records per user, the mean title and body lengths, and the most common title words."""
    if not records:
        return {"records": 0, "users": 0, "per_user": {}, "mean_title_length": 0.0, "mean_body_length": 0.0, "top_words": []}
    per_user = Counter(record["user_id"] for record in records)
    words = Counter(
        word
        for record in records
        for word in record["title"].lower().split()
        if word.isalpha() and word not in STOP_WORDS
    )
    return {
        "records": len(records),
        "users": len(per_user),
        "per_user": {str(user): count for user, count in sorted(per_user.items())},
        "mean_title_length": round(fmean(len(record["title"]) for record in records), 2),
        "mean_body_length": round(fmean(len(record["body"]) for record in records), 2),
        "top_words": [word for word, _ in words.most_common(top_words)],
    }
