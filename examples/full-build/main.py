"""Tasks whose code is baked into the image (copy_style "full"), importing the local `dep` module.

In the image, dep.py sits beside this file in /app. Locally: `PYTHONPATH=deps python main.py`.
"""

from dep import collatz_steps


def steps(n: int) -> int:
    """The number of Collatz steps of one number."""
    return collatz_steps(n)


def longest_chain(limit: int) -> int:
    """The start below limit with the longest Collatz chain."""
    if limit < 2:
        raise ValueError("limit must be at least 2")
    return max(range(1, limit), key=collatz_steps)


if __name__ == "__main__":
    start = longest_chain(10_000)
    print(f"below 10000, {start} takes the most steps: {steps(start)}")
