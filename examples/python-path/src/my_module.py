"""Business logic, kept outside the workflows folder; the `my-module-env` tasks live here."""


def say_hello(name: str) -> str:
    """A greeting for one name."""
    name = name.strip() or "stranger"
    return f"Hello, {name}!"


def initials(name: str) -> str:
    """The initials of a full name, e.g. "Ada Lovelace" -> "A.L."."""
    return "".join(part[0].upper() + "." for part in name.split())
