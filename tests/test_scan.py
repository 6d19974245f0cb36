"""scan_vault, is_ignored, read_note_bytes and read_notes on small vaults built in tmp dirs."""

import contextlib
import os

import pytest

from vaultlearn.errors import NotAVaultError
from vaultlearn.vault import scan
from vaultlearn.vault.read import read_notes
from vaultlearn.vault.scan import ResolvedRoot, is_ignored, read_note_beneath, read_note_bytes, scan_vault


def write(root, rel, content="x"):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "vault"
    for rel in [
        "Home.md",
        "b/Note.MD",
        "a/Deep/Note.md",
        "a/img.png",
        ".obsidian/app.json",
        ".obsidian/snippets/x.md",
        ".trash/Old.md",
        ".vaultlearn/state.md",
        ".git/HEAD",
        ".stfolder/sync.md",
        ".DS_Store",
        "Archive/2020/Old.md",
        "drafts/tmp.md",
        "notes.tmp",
    ]:
        write(root, rel)
    return root


def test_lists_notes_and_attachments_sorted_and_skips_hidden(vault):
    result = scan_vault(vault)
    assert [f.path for f in result.notes] == [
        "Archive/2020/Old.md",
        "Home.md",
        "a/Deep/Note.md",
        "b/Note.MD",
        "drafts/tmp.md",
    ]
    assert result.attachments == ["a/img.png", "notes.tmp"]
    assert result.warnings == []


def test_scanned_file_has_size_and_mtime(vault):
    write(vault, "Home.md", "hello")
    os.utime(vault / "Home.md", (1_600_000_000, 1_600_000_000))
    home = next(f for f in scan_vault(vault).notes if f.path == "Home.md")
    assert (home.size, home.mtime) == (5, 1_600_000_000)


def test_ignore_globs(vault):
    result = scan_vault(vault, ["Archive", "*.tmp", "drafts/**"])
    assert [f.path for f in result.notes] == ["Home.md", "a/Deep/Note.md", "b/Note.MD"]
    assert result.attachments == ["a/img.png"]


@pytest.mark.parametrize(
    "path, globs, expected",
    [
        (".obsidian/app.json", (), True),
        ("a/.hidden/x.md", (), True),
        ("a/.DS_Store", (), True),
        ("a/b.md", (), False),
        ("Archive/x/y.md", ("Archive/",), True),
        ("Other/Archive/y.md", ("Archive",), True),  # a glob without "/" matches any name
        ("Other/Archive/y.md", ("Archive/**",), False),  # a glob with "/" is anchored at the root
        ("a/b.tmp", ("*.tmp",), True),
        ("a/b.md", ("*.tmp", ""), False),
    ],
)
def test_is_ignored(path, globs, expected):
    assert is_ignored(path, globs) is expected


def test_symlink_loop_does_not_hang(tmp_path):
    root = tmp_path / "vault"
    write(root, "a/Note.md")
    (root / "a" / "loop").symlink_to(root / "a", target_is_directory=True)
    (root / "self").symlink_to(root / "self")  # a link to itself
    result = scan_vault(root)
    assert [f.path for f in result.notes] == ["a/Note.md"]
    assert any(w.startswith("a/loop:") for w in result.warnings)
    assert any(w.startswith("self:") for w in result.warnings)


def test_symlinks_outside_the_vault_are_skipped(tmp_path):
    root = tmp_path / "vault"
    write(root, "Home.md")
    write(root, "Real.md")
    outside = tmp_path / "outside"
    write(outside, "Secret.md")
    (root / "secret.md").symlink_to(outside / "Secret.md")
    (root / "ext").symlink_to(outside, target_is_directory=True)
    (root / "Alias.md").symlink_to(root / "Real.md")
    result = scan_vault(root)
    assert [f.path for f in result.notes] == ["Alias.md", "Home.md", "Real.md"]
    assert sorted(w.split(":")[0] for w in result.warnings) == ["ext", "secret.md"]
    assert read_note_bytes(root, "secret.md", 100) is None
    assert read_note_bytes(root, "ext/Secret.md", 100) is None
    assert read_note_bytes(root, "../outside/Secret.md", 100) is None
    assert read_note_bytes(root, "Alias.md", 100) == b"x"


def test_reading_many_notes_refuses_what_resolves_outside_the_vault(tmp_path):
    """read_notes resolves the vault root once per chunk: a symlinked root still reads its notes, and a symlink
    out of the vault (the note, or a folder on its way), ``..`` and a symlink loop are still refused."""
    root = tmp_path / "vault"
    write(root, "Real.md", "real")
    outside = write(tmp_path, "outside/Secret.md", "secret")
    (root / "secret.md").symlink_to(outside)
    (root / "ext").symlink_to(outside.parent, target_is_directory=True)
    (root / "Alias.md").symlink_to(root / "Real.md")
    (root / "Loop.md").symlink_to(root / "Loop.md")
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(root, target_is_directory=True)
    paths = ["Real.md", "Alias.md", "secret.md", "ext/Secret.md", "../outside/Secret.md", "Loop.md"]
    for vault in (root, linked_root):
        read = {r.path: r for chunk in read_notes(vault, [(p, None) for p in paths], 100, 100, workers=1)
                for r in chunk}
        assert read["Real.md"].digest == read["Alias.md"].digest and read["Alias.md"].note.text == "Alias\nreal"
        for path in paths[2:]:
            assert read[path].digest is None and read[path].problems == ()
            assert read_note_bytes(vault, path, 100) is None


def test_a_resolved_root_resolves_each_note_as_realpath_does(tmp_path):
    """ResolvedRoot resolves each folder once and the note's own name by one lstat: the same paths as realpath,
    through symlinked folders and notes, inside the vault and out of it."""
    root = tmp_path / "vault"
    write(root, "Real.md")
    write(root, "sub/deep/Note.md")
    outside = write(tmp_path, "outside/Secret.md")
    (root / "inner").symlink_to(root / "sub", target_is_directory=True)
    (root / "sub" / "Alias.md").symlink_to(root / "Real.md")
    (root / "sub" / "away.md").symlink_to(outside)
    (root / "ext").symlink_to(outside.parent, target_is_directory=True)
    resolved = ResolvedRoot(root)
    paths = ["Real.md", "sub/deep/Note.md", "inner/deep/Note.md", "sub/Alias.md", "inner/Alias.md", "sub/away.md",
             "ext/Secret.md", "sub/../Real.md", "../outside/Secret.md", "sub/deep/.."]
    for path in paths * 2:  # the second time from the resolved folders
        assert resolved.note_path(path) == os.path.realpath(root / path), path
    assert read_note_beneath(resolved, "inner/deep/Note.md", 100) == b"x"
    assert read_note_beneath(resolved, "inner/Alias.md", 100) == b"x"
    assert read_note_beneath(resolved, "sub/away.md", 100) is None
    assert read_note_beneath(resolved, "Real.md/x.md", 100) is None


def test_file_vanishing_during_the_scan_is_skipped(vault, monkeypatch):
    real_scandir = os.scandir

    def scandir_then_delete(path):
        with real_scandir(path) as entries:
            listed = list(entries)
        gone = vault / "Home.md"
        if gone.exists():
            gone.unlink()
        return contextlib.nullcontext(listed)

    monkeypatch.setattr(scan.os, "scandir", scandir_then_delete)
    result = scan_vault(vault)
    assert "Home.md" not in [f.path for f in result.notes]
    assert "a/Deep/Note.md" in [f.path for f in result.notes]
    assert [w.split(":")[0] for w in result.warnings] == ["Home.md"]


def test_not_a_vault(tmp_path):
    with pytest.raises(NotAVaultError, match="does not exist"):
        scan_vault(tmp_path / "missing")
    write(tmp_path, "file.md")
    with pytest.raises(NotAVaultError, match="not a folder"):
        scan_vault(tmp_path / "file.md")


def test_read_note_bytes_caps_and_handles_missing_files(tmp_path):
    write(tmp_path, "Big.md", "0123456789")
    assert read_note_bytes(tmp_path, "Big.md", 4) == b"0123"
    assert read_note_bytes(tmp_path, "Big.md", 100) == b"0123456789"
    assert read_note_bytes(tmp_path, "Gone.md", 100) is None
    assert read_note_bytes(tmp_path, ".", 100) is None


def test_a_note_that_grows_after_its_stat_is_read_on_up_to_the_cap(tmp_path, monkeypatch):
    write(tmp_path, "Growing.md", "0123456789")
    real_fstat = os.fstat

    def stale_fstat(fd):  # the size as it was before a writer appended to the file
        status = real_fstat(fd)
        return os.stat_result((*status[:6], 4, *status[7:]))

    monkeypatch.setattr(os, "fstat", stale_fstat)
    assert read_note_bytes(tmp_path, "Growing.md", 100) == b"0123456789"
    assert read_note_bytes(tmp_path, "Growing.md", 7) == b"0123456"
    assert read_note_bytes(tmp_path, "Growing.md", 5) == b"01234"
