"""The change coalescer (pure, with an injected clock and probe) and the watcher on a real watchdog observer."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from vaultlearn.daemon.watcher import Batch, ChangeCoalescer, VaultWatcher


class FakeFiles:
    """A probe over an in-memory table of (size, mtime) per path."""

    def __init__(self):
        self.stats: dict[str, tuple[int, int]] = {}

    def write(self, path: str, size: int = 1) -> None:
        old = self.stats.get(path, (0, 0))
        self.stats[path] = (size, old[1] + 1)

    def __call__(self, path: str):
        return self.stats.get(path)


@pytest.fixture
def files():
    return FakeFiles()


@pytest.fixture
def queue(files):
    return ChangeCoalescer(files, debounce=0.5, max_delay=3.0)


def test_save_storm_is_one_path_after_quiet(files, queue):
    for i in range(20):
        files.write("a.md", size=i)
        queue.touch("a.md", now=i * 0.1)
    assert queue.take(now=2.0) is None  # 0.5 s of quiet not reached
    assert queue.due() == pytest.approx(2.4)
    assert queue.take(now=2.5) == Batch(paths=("a.md",))
    assert queue.take(now=10.0) is None and queue.due() is None


def test_a_closed_write_is_handed_out_after_the_quick_quiet(files, queue):
    files.write("a.md")
    queue.touch("a.md", 0.0)
    queue.touch("a.md", 0.01, closed=True)  # the editor closed the file: its save is complete
    assert queue.due() == pytest.approx(0.11)
    files.write("b.md")
    queue.touch("b.md", 0.02)  # another file is still open for writing: the full debounce applies
    assert queue.due() == pytest.approx(0.52)
    queue.touch("b.md", 0.03, closed=True)
    assert queue.take(0.2) == Batch(paths=("a.md", "b.md"))


def test_moves_and_deletes_end_a_write(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.delete("c.md", 0.0)
    assert queue.due() == pytest.approx(0.1)


def test_continuous_storm_is_flushed_after_max_delay(files, queue):
    now = 0.0
    while now < 3.0:
        files.write("a.md")
        queue.touch("a.md", now)
        assert queue.take(now) is None
        now += 0.2
    files.write("b.md")
    queue.touch("b.md", now)
    assert queue.take(now) == Batch(paths=("a.md", "b.md"))


def test_rename_chain_collapses_and_keeps_both_ends(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.move("b.md", "c.md", 0.1)
    batch = queue.take(1.0)
    assert batch.moves == (("a.md", "c.md"),)
    assert batch.paths == ("a.md", "b.md", "c.md")


def test_rename_back_is_no_move(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.move("b.md", "a.md", 0.1)
    assert queue.take(1.0) == Batch(paths=("a.md", "b.md"))


def test_atomic_save_through_a_temp_file_is_a_modify(files, queue):
    files.write("note.md", size=9)
    queue.move(None, "note.md", 0.0)  # ".note.md.tmp" → "note.md": the source is not a note
    assert queue.take(1.0) == Batch(paths=("note.md",))


def test_moving_a_renamed_note_to_the_trash_voids_the_rename(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.move("b.md", None, 0.1)  # "b.md" → ".trash/b.md"
    assert queue.take(1.0) == Batch(paths=("a.md", "b.md"))


def test_deleting_a_rename_target_voids_the_rename(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.delete("b.md", 0.1)
    assert queue.take(1.0).moves == ()


def test_overwriting_a_rename_target_keeps_the_new_source(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.move("c.md", "b.md", 0.1)
    assert queue.take(1.0).moves == (("c.md", "b.md"),)


def test_moves_are_ordered_so_a_freed_path_is_reused_after(files, queue):
    queue.move("a.md", "b.md", 0.0)
    queue.move("c.md", "a.md", 0.1)  # a.md is free again and reused
    queue.move("b.md", "d.md", 0.2)  # collapses to a.md → d.md, recorded last
    assert queue.take(1.0).moves == (("a.md", "d.md"), ("c.md", "a.md"))


def test_a_swap_cycle_is_handed_out_unordered(files, queue):
    queue.move("a.md", "t.md", 0.0)
    queue.move("b.md", "a.md", 0.1)
    queue.move("t.md", "b.md", 0.2)
    assert sorted(queue.take(1.0).moves) == [("a.md", "b.md"), ("b.md", "a.md")]


def test_half_written_file_is_held_until_stable(files, queue):
    files.write("big.md", size=100)
    queue.touch("big.md", 0.0)
    files.write("ok.md")
    queue.touch("ok.md", 0.0)
    files.write("big.md", size=200)  # written on after its last event
    assert queue.take(0.5) == Batch(paths=("ok.md",))
    assert queue.pending == 1 and queue.due() == pytest.approx(1.0)
    assert queue.take(1.0) == Batch(paths=("big.md",))


def test_a_file_that_never_settles_is_read_after_the_limit(files):
    queue = ChangeCoalescer(files, debounce=0.5, max_delay=3.0, settle_limit=2.0)
    files.write("log.md")
    queue.touch("log.md", 0.0)
    files.write("log.md")
    now = 0.5
    while (batch := queue.take(now)) is None:
        files.write("log.md")
        now += 0.5
    assert batch.paths == ("log.md",) and now == pytest.approx(2.0)


def test_rescan_request(queue):
    queue.request_rescan(0.0)
    assert queue.take(0.5) == Batch(rescan=True)


# --- the real observer ----------------------------------------------------------------------------------
@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "vault"
    (root / ".obsidian").mkdir(parents=True)
    (root / "a.md").write_text("alpha")
    (root / "folder").mkdir()
    (root / "folder" / "x.md").write_text("x")
    (root / "folder" / "y.md").write_text("y")
    return root


@pytest.fixture
def watcher(vault):
    w = VaultWatcher(vault, ignore_globs=["drafts"], debounce=0.1)
    w.start()
    yield w
    w.stop()


def collect(watcher: VaultWatcher, settle: float = 1.0, limit: float = 20.0) -> Batch:
    """Merge the batches handed out until the watcher stays empty for ``settle`` seconds.

    watchdog holds an unpaired move (out of the vault) for 0.5 s while it looks for its other half.
    """
    moves, paths, rescan = [], set(), False
    deadline = time.monotonic() + limit
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        batch = watcher.take()
        if batch is not None:
            moves += batch.moves
            paths |= set(batch.paths)
            rescan |= batch.rescan
            quiet_since = time.monotonic()
        elif watcher.pending == 0 and time.monotonic() - quiet_since > settle:
            break
        time.sleep(0.02)
    return Batch(tuple(moves), tuple(sorted(paths)), rescan)


def test_create_modify_delete(vault, watcher):
    (vault / "new.md").write_text("new")
    (vault / "a.md").write_text("alpha 2")
    (vault / "folder" / "y.md").unlink()
    assert collect(watcher) == Batch(paths=("a.md", "folder/y.md", "new.md"))


def test_ignored_paths_and_attachments_are_dropped(vault, watcher):
    (vault / ".obsidian" / "workspace.md").write_text("w")
    (vault / ".git").mkdir()
    (vault / ".git" / "HEAD.md").write_text("h")
    (vault / "drafts").mkdir()
    (vault / "drafts" / "d.md").write_text("d")
    (vault / "image.png").write_bytes(b"png")
    (vault / ".vaultlearn").mkdir()
    (vault / ".vaultlearn" / "state.md").write_text("s")
    assert collect(watcher) == Batch()


def test_rename_is_a_move(vault, watcher):
    (vault / "a.md").rename(vault / "b.md")
    assert collect(watcher) == Batch(moves=(("a.md", "b.md"),), paths=("a.md", "b.md"))


def test_folder_rename_moves_every_note_under_it(vault, watcher):
    (vault / "folder").rename(vault / "renamed")
    batch = collect(watcher)
    assert sorted(batch.moves) == [("folder/x.md", "renamed/x.md"), ("folder/y.md", "renamed/y.md")]
    assert not batch.rescan


def test_atomic_save_by_rename_over_the_note(vault, watcher):
    tmp = vault / ".a.md.tmp-sync"
    tmp.write_text("alpha, saved by a sync tool")
    os.replace(tmp, vault / "a.md")
    assert collect(watcher) == Batch(paths=("a.md",))


def test_folder_moved_out_of_the_vault_asks_for_a_rescan(vault, watcher, tmp_path):
    shutil.move(vault / "folder", tmp_path / "elsewhere")
    assert collect(watcher).rescan


def test_folder_moved_into_the_vault_lists_its_notes(vault, watcher, tmp_path):
    outside = tmp_path / "incoming"
    outside.mkdir()
    (outside / "p.md").write_text("p")
    (outside / "sub").mkdir()
    (outside / "sub" / "q.md").write_text("q")
    shutil.move(outside, vault / "incoming")
    assert collect(watcher).paths == ("incoming/p.md", "incoming/sub/q.md")


def test_burst_of_1000_writes_loses_nothing(vault, watcher):
    names = [f"burst/n{i:04d}.md" for i in range(1000)]
    (vault / "burst").mkdir()
    for i, name in enumerate(names):
        (vault / name).write_text(f"note {i}")
    for name in names[::3]:
        (vault / name).write_text("edited")
    batch = collect(watcher)
    assert batch.paths == tuple(names) and not batch.rescan
