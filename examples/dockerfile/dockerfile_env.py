"""Tasks that need a system tool (figlet), installed by docker/Dockerfile."""

import subprocess

from tabulate import tabulate


def banner(text: str) -> str:
    """Renders text as a large ASCII-art banner with the figlet command."""
    result = subprocess.run(["figlet", "-w", "120", text], check=True, capture_output=True, text=True)
    return result.stdout


def letter_table(text: str) -> str:
    """Counts the letters of text and returns them as a table."""
    counts: dict[str, int] = {}
    for char in text.lower():
        if char.isalpha():
            counts[char] = counts.get(char, 0) + 1
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tabulate(rows, headers=["letter", "count"])


if __name__ == "__main__":
    print(letter_table("Hello from a custom Dockerfile"))
    print(banner("Flyte"))
