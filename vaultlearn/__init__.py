"""vaultlearn: link suggestions for Obsidian vaults that learn from the vault's own links."""

__version__ = "0.1.0"
