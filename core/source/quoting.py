"""SQL identifiers, quoted once, the same way everywhere."""


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
