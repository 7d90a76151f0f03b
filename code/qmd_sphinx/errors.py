"""The one error the Quarto reader raises: syntax outside the supported subset."""

from __future__ import annotations


class QmdSyntaxError(ValueError):
    """A ``.qmd`` construct the bridge does not support, or malformed syntax.

    ``str(err)`` is ``"{path}:{line}: {message}"`` so editors and CI logs can
    jump to the offending line (1-based, counted in the ``.qmd`` file).
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")

    def __reduce__(self):  # keep the three fields when pickled (parallel builds)
        return (type(self), (self.path, self.line, self.message))
