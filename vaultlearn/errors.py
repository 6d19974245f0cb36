"""Errors a user can act on. The CLI prints their message on stderr and exits 1; the API maps them to 4xx."""


class VaultlearnError(Exception):
    """Base class: a failure with a message meant for the user (no traceback)."""


class NotAVaultError(VaultlearnError):
    """The path is not a folder that can be used as a vault."""


class NoteNotFoundError(VaultlearnError):
    """A note name or path does not match any note of the vault (or points outside it)."""


class NotIndexedError(VaultlearnError):
    """The vault (or the note) has not been indexed yet."""


class StateError(VaultlearnError):
    """The state under VAULT/.vaultlearn/ is missing, locked or unreadable."""
