"""Workflow 1: clean a list of words and count them."""

from collections import Counter

from lib.workflows.env import get_logger
from lib.workflows.utils import normalize

log = get_logger(__name__)


def process_workflow(words: list[str]) -> dict[str, int]:
    """Counts each distinct word, ignoring case and surrounding blanks."""
    cleaned = normalize(words)
    log.info("counting %d words", len(cleaned))
    return dict(Counter(cleaned).most_common())


if __name__ == "__main__":
    print(process_workflow(["Flyte", "tasks ", "flyte", "", "Apps", "TASKS"]))
