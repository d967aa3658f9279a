"""The workflows: each module offers tasks of the shared `workflows` environment."""
