"""Helpers used by more than one workflow."""

from collections.abc import Iterable


def normalize(words: Iterable[str]) -> list[str]:
    """Lower-cases and strips words, dropping the empty ones."""
    return [word.strip().lower() for word in words if word.strip()]


def fibonacci(n: int) -> list[int]:
    """The first n Fibonacci numbers."""
    if n < 0:
        raise ValueError("n must not be negative")
    numbers: list[int] = []
    a, b = 0, 1
    for _ in range(n):
        numbers.append(a)
        a, b = b, a + b
    return numbers
