"""A single file with everything: the tasks of the `env` task environment.

flyte.toml declares the environment and points each task at a function here, so this
file is plain Python: run it directly to try the tasks locally.
"""


def say_hello(name: str) -> str:
    """Greets one person."""
    return f"Hello, {name}!"


def shout(greeting: str, times: int) -> str:
    """Repeats a greeting, louder each time."""
    if times < 1:
        raise ValueError("times must be at least 1")
    word = greeting.rstrip("!").upper()
    return " ".join(word + "!" * i for i in range(1, times + 1))


if __name__ == "__main__":
    greeting = say_hello("World")
    print(greeting)
    print(shout(greeting, 3))
