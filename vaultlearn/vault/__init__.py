"""Reading a vault: scanning files, parsing notes, resolving links, assigning phases."""
