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


class NonFiniteError(VaultlearnError):
    """An embedding, score or training loss is NaN or infinite: a defect, never a result."""


def require_finite(values, what: str) -> None:
    """Raise :class:`NonFiniteError` naming ``what`` when ``values`` (numpy array, torch tensor or float) holds
    a NaN or an infinity."""
    import numpy as np

    array = values.detach().float().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    bad = ~np.isfinite(array)
    if bad.any():
        raise NonFiniteError(f"{what}: {int(bad.sum())} of {bad.size} values are NaN or infinite; "
                             "nothing was scored or saved")
