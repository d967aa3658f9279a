"""The workflow: the `workflow-env` tasks, calling into src/my_module.py.

`my_module` is importable because flyte.toml puts src/ on PYTHONPATH (code.python_path).
Locally, do the same: `PYTHONPATH=src python workflows/workflow.py` (or ./run.sh).
"""

from my_module import initials, say_hello


def greet(name: str) -> str:
    """Greets by name and signs with the initials."""
    return f"{say_hello(name)} (signed: {initials(name)})"


def greet_all(names: list[str]) -> list[str]:
    """Greets everyone on the list."""
    return [greet(name) for name in names]


if __name__ == "__main__":
    for line in greet_all(["Grace Hopper", "Alan Turing"]):
        print(line)
