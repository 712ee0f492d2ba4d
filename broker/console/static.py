"""The console's stylesheet and script, read once from the package (they ship in the wheel) and served
by name from a fixed list: no path from the request ever reaches the file system."""

from __future__ import annotations

from importlib import resources

MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


class ShippedFiles:
    def __init__(self, package: str = "jitsec.broker.console") -> None:
        folder = resources.files(package).joinpath("static")
        self._files: dict[str, tuple[bytes, str]] = {}
        for entry in folder.iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if entry.is_file() and suffix in MEDIA_TYPES:
                self._files[entry.name] = (entry.read_bytes(), MEDIA_TYPES[suffix])

    def get(self, name: str) -> tuple[bytes, str] | None:
        """``(body, media type)`` of a shipped file, or None."""
        return self._files.get(name)

    def names(self) -> list[str]:
        return sorted(self._files)
