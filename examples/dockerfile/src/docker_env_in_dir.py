"""Tasks of the image built from src/Dockerfile.workdir: the Dockerfile lives beside them."""

import statistics

from tabulate import tabulate


def summarize(numbers: list[float]) -> str:
    """Describes a list of numbers as a two-column table."""
    if not numbers:
        raise ValueError("give at least one number")
    rows = [
        ("count", len(numbers)),
        ("min", min(numbers)),
        ("max", max(numbers)),
        ("mean", round(statistics.fmean(numbers), 3)),
        ("median", statistics.median(numbers)),
    ]
    return tabulate(rows, headers=["statistic", "value"])


if __name__ == "__main__":
    print(summarize([3, 1, 4, 1, 5, 9, 2, 6]))
