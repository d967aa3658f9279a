"""A local dependency: not a pip package, copied into the image by the `full` image's source folder."""


def collatz_steps(n: int) -> int:
    """How many Collatz steps take n to 1."""
    if n < 1:
        raise ValueError("n must be at least 1")
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps
