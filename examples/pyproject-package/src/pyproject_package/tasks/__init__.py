"""The Flyte tasks: thin async wrappers that chain the business logic."""
