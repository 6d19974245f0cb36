"""The watch daemon: file watcher and local HTTP API."""
