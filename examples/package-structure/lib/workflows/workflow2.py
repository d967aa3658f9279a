"""Workflow 2: arithmetic on the Fibonacci numbers."""

from lib.workflows.env import get_logger
from lib.workflows.utils import fibonacci

log = get_logger(__name__)


def math_workflow(n: int) -> int:
    """The sum of the squares of the first n Fibonacci numbers."""
    numbers = fibonacci(n)
    log.info("first %d Fibonacci numbers: %s", n, numbers)
    return sum(number * number for number in numbers)


if __name__ == "__main__":
    print(math_workflow(6))
