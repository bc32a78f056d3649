"""An index folder from somewhere else: it must not make a load read outside it, hang, or lie."""

from __future__ import annotations

import json
import sqlite3

import pytest

from colrank import ColrankIndex, CorruptIndexError, ModelMismatchError, UntrustedModelError
from colrank.store.local.snapshots import CURRENT_FILE, current_snapshot, sha256_file


@pytest.fixture
def saved(tiny_index, tmp_path):
    return tiny_index.save(tmp_path / "idx"), tiny_index.config


def manifest_of(root):
    path = current_snapshot(root) / "manifest.json"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("name", ["../../secret.txt", "/etc/hostname", "bm25/../../secret.txt"])
def test_manifest_names_outside_the_snapshot_are_refused(saved, tmp_path, name) -> None:
    root, config = saved
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me" + "." * (98_765 - 14))  # a size no name contains
    path, manifest = manifest_of(root)
    manifest["files"][name] = {"bytes": secret.stat().st_size, "sha256": "0" * 64}
    path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="outside") as caught:
        ColrankIndex.load(root, config)
    assert "do not read me" not in str(caught.value) and str(secret.stat().st_size) not in str(
        caught.value
    )


def test_a_symlinked_index_file_is_refused(saved, tmp_path) -> None:
    root, config = saved
    snapshot = current_snapshot(root)
    outside = tmp_path / "elsewhere.npy"
    (snapshot / "token_lengths.npy").rename(outside)
    (snapshot / "token_lengths.npy").symlink_to(outside)
    with pytest.raises(CorruptIndexError, match="symbolic link"):
        ColrankIndex.load(root, config)


@pytest.mark.parametrize("pointer", ["../other", "snapshot-../../etc", "/tmp", "snapshot-x"])
def test_current_must_name_a_sibling_snapshot(saved, tmp_path, pointer) -> None:
    root, config = saved
    (tmp_path / "other").mkdir()
    (root / CURRENT_FILE).write_text(pointer)
    with pytest.raises(CorruptIndexError, match="does not name a colrank snapshot"):
        ColrankIndex.load(root, config)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TRIGGER t AFTER DELETE ON docs BEGIN SELECT 1; END",
        "CREATE VIEW v AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) "
        "SELECT x FROM r",
    ],
)
def test_document_stores_with_triggers_or_views_are_refused(saved, statement) -> None:
    root, config = saved
    snapshot = current_snapshot(root)
    db = sqlite3.connect(snapshot / "docs.sqlite")
    db.execute(statement)
    db.commit()
    db.close()
    path, manifest = manifest_of(root)  # a hostile folder signs its own changes
    docs = snapshot / "docs.sqlite"
    manifest["files"]["docs.sqlite"] = {"bytes": docs.stat().st_size, "sha256": sha256_file(docs)}
    path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match="not colrank's"):
        ColrankIndex.load(root, config)


def test_the_saved_document_store_shrinks_after_deletes(tiny_index, tmp_path) -> None:
    tiny_index.add(
        [f"Filler document number {i} " * 40 for i in range(200)], ids=[f"f{i}" for i in range(200)]
    )
    big = tiny_index.save(tmp_path / "a")
    size_before = (current_snapshot(big) / "docs.sqlite").stat().st_size
    tiny_index.delete([f"f{i}" for i in range(200)])
    small = tiny_index.save(tmp_path / "b")
    assert (current_snapshot(small) / "docs.sqlite").stat().st_size < 0.5 * size_before


def shipped_model(folder, marker, name: str, settings: object):
    """A "model" shipped inside the index folder, with code that writes ``marker`` if run."""
    folder.mkdir()
    (folder / "payload.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / name).write_text(json.dumps(settings))
    return folder


@pytest.mark.parametrize("where", ["top", "config"])
def test_a_model_folder_named_by_the_index_is_not_loaded_without_trust(
    saved, tmp_path, where
) -> None:
    root, config = saved
    marker = tmp_path / "imported"
    modules = [{"idx": 0, "name": "0", "path": "", "type": "payload.Module"}]
    evil = shipped_model(root / "model", marker, "modules.json", modules)
    path, manifest = manifest_of(root)
    if where == "top":
        manifest["colbert_model"] = manifest["dense_model"] = str(evil)
    else:  # the settings the index would be opened with
        manifest["config"]["models"]["colbert_model"] = str(evil)
    path.write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError, match="trust_models"):
        ColrankIndex.load(root).search("anything")
    assert not marker.exists()
    if where == "top":  # the caller's own config decides: other models are refused
        with pytest.raises(ModelMismatchError):
            ColrankIndex.load(root, config)
    else:  # the caller's config is what loads, not the stored one
        assert ColrankIndex.load(root, config).search("bread", k=1)[0].id == "food-bread"
    assert not marker.exists()


def test_hub_ids_and_the_offline_alias_need_no_trust(saved) -> None:
    from colrank.models.identity import check_trusted_models

    check_trusted_models({"dense": "offline:minilm", "colbert": "org/not-a-folder-here"}, False)
    root, _ = saved
    with pytest.raises(UntrustedModelError):
        check_trusted_models({"dense": str(root)}, False)
    check_trusted_models({"dense": str(root)}, True)


def _resign(root, name: str) -> None:
    """Sign a changed file in the manifest, as a hostile folder would."""
    path, manifest = manifest_of(root)
    target = current_snapshot(root) / name
    manifest["files"][name] = {"bytes": target.stat().st_size, "sha256": sha256_file(target)}
    path.write_text(json.dumps(manifest))


def _drop_file_list(root) -> None:
    path, manifest = manifest_of(root)
    del manifest["files"]
    path.write_text(json.dumps(manifest))


def _link_out(root, tmp_path, name: str, *, unlisted: bool) -> None:
    """Move an index file out of the folder and leave a symbolic link to it."""
    if unlisted:
        _drop_file_list(root)
    where = root if name == CURRENT_FILE else current_snapshot(root)
    outside = tmp_path / f"outside-{name.replace('/', '-')}"
    (where / name).rename(outside)
    (where / name).symlink_to(outside)


@pytest.mark.parametrize(
    ("name", "unlisted"),
    [
        (CURRENT_FILE, False),
        ("manifest.json", False),
        ("docs.sqlite", True),
        ("tokens.npy", True),
        ("bm25/vocab.json", True),
        ("dense.faiss", True),
    ],
)
def test_a_load_follows_no_symbolic_link_out_of_the_folder(saved, tmp_path, name, unlisted) -> None:
    root, config = saved
    _link_out(root, tmp_path, name, unlisted=unlisted)
    with pytest.raises(CorruptIndexError, match="symbolic link"):
        ColrankIndex.load(root, config)


def _load_within(seconds: float, load, unblock) -> BaseException | None:
    """Run ``load()`` in a thread; fail the test if it is still running after ``seconds``."""
    import threading

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            load()
            outcome.append(None)
        except BaseException as exc:  # reported to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    hung = thread.is_alive()
    if hung:
        unblock()  # let the stuck thread finish, then report the hang
        thread.join(5)
    assert not hung, f"the load was still blocked after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize(("name", "unlisted"), [("manifest.json", False), ("docs.sqlite", True)])
def test_a_fifo_in_the_folder_is_refused_without_hanging(saved, name, unlisted) -> None:
    import os

    root, config = saved
    if unlisted:
        _drop_file_list(root)
    fifo = current_snapshot(root) / name
    fifo.unlink()
    os.mkfifo(fifo)

    def unblock() -> None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    error = _load_within(30, lambda: ColrankIndex.load(root, config), unblock)
    assert isinstance(error, CorruptIndexError), error
    assert "not a regular file" in str(error)


def test_a_manifest_linked_to_an_endless_device_is_refused_before_reading(saved) -> None:
    root, config = saved
    manifest = current_snapshot(root) / "manifest.json"
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    with pytest.raises(CorruptIndexError, match="symbolic link"):
        ColrankIndex.load(root, config)


@pytest.mark.parametrize("name", ["token_lengths.npy", "tokens.npy", "bm25/iids.npy"])
def test_an_npy_header_larger_than_its_file_is_refused_before_allocating(saved, name) -> None:
    import numpy as np

    root, config = saved
    path = current_snapshot(root) / name
    with path.open("rb") as handle:  # keep the real data, declare 10**12 rows
        version = np.lib.format.read_magic(handle)
        read = {(1, 0): np.lib.format.read_array_header_1_0}[version]
        shape, fortran, dtype = read(handle)
        data = handle.read()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran}
    header["shape"] = (10**12, *shape[1:])
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(data)
    _resign(root, name)
    with pytest.raises(CorruptIndexError, match="declares"):
        ColrankIndex.load(root, config)


@pytest.mark.parametrize("verify", [True, False])
def test_a_manifest_with_a_damaged_first_byte_is_a_damaged_index(saved, verify) -> None:
    root, config = saved
    path = current_snapshot(root) / "manifest.json"
    path.write_bytes(b"\xff" + path.read_bytes()[1:])
    with pytest.raises(CorruptIndexError, match="manifest"):
        ColrankIndex.load(root, config, verify=verify)


def test_a_cross_encoder_folder_named_by_the_index_is_not_loaded_without_trust(
    saved, tmp_path
) -> None:
    from colrank.config import OFFLINE_MODEL

    root, _ = saved
    marker = tmp_path / "imported"
    auto_map = {"auto_map": {"AutoModel": "payload.M"}}
    evil = shipped_model(root / "reranker", marker, "config.json", auto_map)
    path, manifest = manifest_of(root)
    # hub-free models everywhere else: only the cross-encoder is a local folder
    manifest["dense_model"] = manifest["colbert_model"] = OFFLINE_MODEL
    manifest["config"]["models"] = {"dense_model": OFFLINE_MODEL, "colbert_model": OFFLINE_MODEL}
    manifest["config"]["search"] = {"cross_encoder_model": str(evil)}
    path.write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError, match="cross_encoder"):
        ColrankIndex.load(root)
    assert not marker.exists()
    trusted = ColrankIndex.load(root, trust_models=True)  # the owner's word opens it
    assert trusted.config.search.cross_encoder_model == str(evil)
