"""unpack(): hostile archives must not touch anything outside dest; good ones unpack faithfully.

Every attack points its escape at a sentinel directory `outside/` in the test's tmp_path
(never at real host files for writes) and then checks that nothing outside `dest/`
changed. The hardlink-to-/etc/passwd cases only check /etc/passwd's link count and bytes.
Runs as root (owners, setuid bits); nothing is mounted.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from archives import (MTIME, build, build_streamed, device, directory, fifo, file, hardlink,
                      snapshot, symlink, zero_file)
from minicontainer.errors import ArchiveError, ConfigError, ImageError
from minicontainer.storage.unpack import Limits, clean_name, unpack

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, setuid bits)")


class Box:
    """tmp_path with dest/ (empty), outside/victim (the sentinel) and archives/."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.dest = tmp_path / "dest"
        self.outside = tmp_path / "outside"
        self.archives = tmp_path / "archives"
        for d in (self.dest, self.outside, self.archives):
            d.mkdir()
        (self.outside / "victim").write_text("original")
        self.before = snapshot(tmp_path, exclude=(self.dest, self.archives))
        self.passwd = _passwd_state()

    def tar(self, entries, compression: str = "", name: str = "a.tar"):
        return build(self.archives / name, entries, compression)

    def unpack(self, entries, compression: str = "", **kw):
        return unpack(self.tar(entries, compression), self.dest, **kw)

    def refuses(self, entries, match: str = "unsafe archive", **kw) -> str:
        """Unpacking must fail with ArchiveError and leave everything outside dest alone."""
        with pytest.raises(ArchiveError, match=match) as err:
            self.unpack(entries, **kw)
        self.assert_outside_untouched()
        return str(err.value)

    def assert_outside_untouched(self) -> None:
        assert snapshot(self.tmp, exclude=(self.dest, self.archives)) == self.before
        assert _passwd_state() == self.passwd


def _passwd_state():
    st = os.stat("/etc/passwd")
    with open("/etc/passwd", "rb") as f:
        return st.st_nlink, st.st_ino, f.read()


@pytest.fixture
def box(tmp_path):
    return Box(tmp_path)


# --- Names -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../x", "/../../x", "..", "a/b/../../../x"])
def test_path_traversal_is_refused(box, name):
    message = box.refuses([file(name, b"pwned")])
    assert repr(name) in message
    assert "\n" not in message


def test_absolute_names_land_inside_dest(box):
    box.unpack([file("/abs/file", b"inside"), file(f"/{box.outside}/victim", b"pwned")])
    assert (box.dest / "abs/file").read_bytes() == b"inside"
    assert (box.dest / str(box.outside).lstrip("/") / "victim").read_bytes() == b"pwned"
    box.assert_outside_untouched()


def test_dotdot_that_stays_inside_is_folded(box):
    box.unpack([file("a/../b", b"ok")])
    assert (box.dest / "b").read_bytes() == b"ok"
    assert not (box.dest / "a").exists()


@pytest.mark.parametrize("raw, clean", [("./a//b/", "a/b"), ("/", ""), (".", ""), ("a/./b", "a/b")])
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


# --- Symlinks ---------------------------------------------------------------------------

def test_symlink_out_then_write_through_absolute(box):
    box.refuses([symlink("evil", str(box.outside)), file("evil/pwned", b"x")])
    assert os.readlink(box.dest / "evil") == str(box.outside)   # the link itself is harmless


@pytest.mark.parametrize("target", ["../outside", "../../..", "../../../../../../.."])
def test_symlink_out_then_write_through_relative(box, target):
    box.refuses([symlink("evil", target), file("evil/pwned", b"x"),
                 file("evil/outside/pwned", b"x")])


def test_symlink_out_then_overwrite_existing_host_file_through_it(box):
    box.refuses([symlink("evil", str(box.outside)), file("evil/victim", b"pwned")])


def test_symlink_chain_is_not_followed(box):
    box.refuses([symlink("a", "b"), symlink("b", "c"), symlink("c", str(box.outside)),
                 file("a/pwned", b"x")])


def test_symlink_chain_inside_dest_is_not_traversed_either(box):
    # Even a chain that stays inside is refused: we never resolve symlinks while unpacking.
    box.refuses([directory("real"), symlink("b", "real"), symlink("a", "b"), file("a/x", b"x")])


def test_nested_symlink_in_middle_of_path(box):
    box.refuses([directory("usr"), symlink("usr/lib", str(box.outside)),
                 file("usr/lib/x/y/pwned", b"x")])


def test_dot_entry_that_is_a_symlink(box):
    message = box.refuses([symlink(".", str(box.outside)), file("pwned", b"x")])
    assert "root" in message


def test_dot_entry_that_is_a_file(box):
    box.refuses([file("./", b"x")])


def test_directory_replaced_by_symlink_then_written_under(box):
    box.refuses([directory("d"), file("d/keep", b"1"), symlink("d", str(box.outside)),
                 file("d/pwned", b"x")])


def test_absolute_symlinks_keep_their_text(box):
    box.unpack([directory("bin"), file("bin/busybox", b"\x7fELF", mode=0o755),
                symlink("bin/sh", "/bin/busybox"), directory("usr/bin"),
                symlink("usr/bin/env", "../../bin/busybox"), symlink("lib", "usr/lib"),
                symlink("dangling", "/nowhere/at/all")])
    assert os.readlink(box.dest / "bin/sh") == "/bin/busybox"
    assert os.readlink(box.dest / "usr/bin/env") == "../../bin/busybox"
    assert os.readlink(box.dest / "lib") == "usr/lib"
    assert os.readlink(box.dest / "dangling") == "/nowhere/at/all"
    box.assert_outside_untouched()


# --- Hardlinks ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/etc/passwd", "etc/passwd", "../../etc/passwd",
                                    "../../../../../../../etc/passwd"])
def test_hardlink_to_host_passwd_is_refused(box, target):
    box.refuses([hardlink("passwd", target)])
    assert not (box.dest / "passwd").exists()


@pytest.mark.parametrize("relative", [False, True])
def test_hardlink_to_sentinel_outside_is_refused(box, relative):
    target = "../outside/victim" if relative else str(box.outside / "victim")
    box.refuses([hardlink("h", target)])
    assert os.stat(box.outside / "victim").st_nlink == 1


def test_hardlink_to_a_symlink_pointing_out(box):
    message = box.refuses([symlink("l", str(box.outside / "victim")), hardlink("h", "l")])
    assert "symlink" in message


def test_hardlink_through_a_symlinked_directory(box):
    box.refuses([symlink("d", str(box.outside)), hardlink("h", "d/victim")])


def test_hardlink_to_a_directory_is_refused(box):
    box.refuses([directory("d"), hardlink("h", "d")])


def test_hardlink_to_extracted_file(box):
    stats = box.unpack([file("a", b"data"), hardlink("b", "a"), hardlink("c", "/a")])
    a, b, c = (os.stat(box.dest / n) for n in "abc")
    assert a.st_ino == b.st_ino == c.st_ino and a.st_nlink == 3
    assert stats.bytes == 4                     # counted once


# --- Special files ------------------------------------------------------------------------

def test_device_nodes_are_skipped_and_reported(box):
    stats = box.unpack([directory("dev"), device("dev/null", "chr", 1, 3),
                        device("dev/sda", "blk", 8, 0), fifo("dev/pipe", mode=0o620)])
    assert not os.path.lexists(box.dest / "dev/null")
    assert not os.path.lexists(box.dest / "dev/sda")
    assert [name for name, _ in stats.skipped] == ["dev/null", "dev/sda"]
    assert "device" in stats.skipped[0][1]
    st = os.lstat(box.dest / "dev/pipe")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620


# --- Replacement ------------------------------------------------------------------------

def test_later_entry_replaces_earlier(box):
    box.unpack([file("f", b"one"), file("f", b"two"),
                symlink("s", str(box.outside / "victim")), file("s", b"regular now"),
                file("d", b"file first"), directory("d"), file("d/x", b"x"),
                directory("e"), file("e/inner", b"x"), file("e", b"file now"),
                file("a", b"old"), hardlink("b", "a"), file("a", b"new")])
    dest = box.dest
    assert (dest / "f").read_bytes() == b"two"
    assert not (dest / "s").is_symlink() and (dest / "s").read_bytes() == b"regular now"
    assert (dest / "d/x").read_bytes() == b"x"
    assert (dest / "e").read_bytes() == b"file now"
    assert (dest / "a").read_bytes() == b"new" and (dest / "b").read_bytes() == b"old"
    box.assert_outside_untouched()


def test_symlink_replaced_by_directory_is_a_real_directory(box):
    box.unpack([symlink("lib", str(box.outside)), directory("lib"), file("lib/x", b"x")])
    assert not (box.dest / "lib").is_symlink()
    assert (box.dest / "lib/x").read_bytes() == b"x"
    box.assert_outside_untouched()


def test_duplicate_directories_merge(box):
    box.unpack([directory("d", mode=0o700), file("d/a", b"a"), directory("d", mode=0o751),
                file("d/b", b"b")])
    assert sorted(os.listdir(box.dest / "d")) == ["a", "b"]
    assert stat.S_IMODE(os.stat(box.dest / "d").st_mode) == 0o751


# --- Metadata -------------------------------------------------------------------------

@needs_root
def test_owners_modes_and_times_are_preserved(box):
    box.unpack([directory("./", mode=0o755),
                directory("tmp", mode=0o1777),
                directory("shared", mode=0o2775, gid=50),
                file("su", b"#!", mode=0o4755, uid=0, gid=0),
                file("wall", b"#!", mode=0o2755, uid=0, gid=5),
                file("home/alice/notes", b"hi", mode=0o600, uid=1000, gid=1000),
                directory("ro", mode=0o555), file("ro/inside", b"x", mode=0o444),
                symlink("link", "/su", uid=1000, gid=1001)])
    dest = box.dest

    def mode(p):
        return stat.S_IMODE(os.lstat(dest / p).st_mode)
    assert mode(".") == 0o755
    assert mode("tmp") == 0o1777
    assert mode("shared") == 0o2775 and os.stat(dest / "shared").st_gid == 50
    assert mode("su") == 0o4755 and mode("wall") == 0o2755
    assert os.stat(dest / "wall").st_gid == 5
    notes = os.stat(dest / "home/alice/notes")
    assert (notes.st_uid, notes.st_gid, mode("home/alice/notes")) == (1000, 1000, 0o600)
    assert mode("home") == 0o755                # implicit parent directory
    assert mode("ro") == 0o555 and (dest / "ro/inside").read_bytes() == b"x"
    link = os.lstat(dest / "link")
    assert (link.st_uid, link.st_gid) == (1000, 1001)
    for p in (".", "tmp", "su", "ro", "ro/inside", "link", "home/alice/notes"):
        assert os.lstat(dest / p).st_mtime == MTIME, p


def test_long_and_deep_names(box):
    deep = "/".join(["d" * 50] * 60)            # 3 KB: a pax header carries it
    box.unpack([file(f"{deep}/f", b"deep"), file("x" * 255, b"long")])
    assert (box.dest / deep / "f").read_bytes() == b"deep"
    assert (box.dest / ("x" * 255)).read_bytes() == b"long"


def test_name_longer_than_path_max_is_refused(box):
    box.refuses([file("/".join(["d" * 200] * 30), b"x")], match="PATH_MAX")


# --- Formats and integrity ----------------------------------------------------------------

@pytest.mark.parametrize("compression, fmt", [("", "tar"), ("gz", "tar.gz"), ("xz", "tar.xz"),
                                              ("bz2", "tar.bz2")])
def test_formats_by_magic_bytes(box, compression, fmt):
    # The name says .tar whatever the content: detection uses the magic bytes.
    archive = box.tar([file("etc/hostname", b"box\n"), symlink("bin/sh", "/bin/busybox")],
                      compression, name="misleading.tar")
    seen = []
    stats = unpack(archive, box.dest, progress=lambda done, total: seen.append((done, total)))
    assert stats.format == fmt and stats.entries == 2 and stats.bytes == 4
    assert stats.digest == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (box.dest / "etc/hostname").read_bytes() == b"box\n"
    size = archive.stat().st_size
    assert seen[-1] == (size, size)


def _good_archive(box, compression="gz", name="good.tar.gz"):
    data = os.urandom(200_000)                  # incompressible: truncation hits the data
    return box.tar([directory("d"), file("d/one", data), file("d/two", data[:1000]),
                    file("d/three", b"3")], compression, name)


@pytest.mark.parametrize("keep", [10, 100, 60_000, -9, -4, -1])
def test_truncated_gzip(box, keep):
    archive = _good_archive(box)
    blob = archive.read_bytes()
    archive.write_bytes(blob[:keep] if keep > 0 else blob[:keep])
    with pytest.raises(ArchiveError, match="corrupt archive|unknown archive format"):
        unpack(archive, box.dest)
    box.assert_outside_untouched()


def test_corrupt_gzip_data(box):
    archive = _good_archive(box)
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    with pytest.raises(ArchiveError, match="corrupt archive"):
        unpack(archive, box.dest)


@pytest.mark.parametrize("cut", ["mid-data", "mid-header", "at-header", "no-end-marker"])
def test_truncated_plain_tar(box, cut):
    archive = _good_archive(box, "", "good.tar")
    blob = archive.read_bytes()
    two = blob.index(b"d/two")                   # the (pax) header block of the second file
    header = two - two % 512
    keep = {"mid-data": 100_000, "mid-header": header + 200, "at-header": header,
            "no-end-marker": _end_of_last_member(archive)}[cut]
    archive.write_bytes(blob[:keep])
    with pytest.raises(ArchiveError, match="corrupt archive"):
        unpack(archive, box.dest)


def _end_of_last_member(archive) -> int:
    with tarfile.open(archive) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


def test_bad_header_checksum(box):
    archive = _good_archive(box, "", "good.tar")
    blob = bytearray(archive.read_bytes())
    blob[blob.index(b"d/three") + 1] ^= 0x01      # a name byte: the checksum no longer matches
    archive.write_bytes(bytes(blob))
    with pytest.raises(ArchiveError, match="corrupt archive.*header"):
        unpack(archive, box.dest)


@pytest.mark.parametrize("content, says", [
    (b"", "the file is empty"), (b"hello, world\n" * 100, "unknown archive format"),
    (b"PK\x03\x04" + bytes(600), "zip"), (b"\x28\xb5\x2f\xfd" + bytes(600), "zstd")])
def test_unknown_format(box, content, says):
    archive = box.archives / "thing.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(ArchiveError, match=says):
        unpack(archive, box.dest)


def test_gzip_of_garbage(box):
    archive = box.archives / "garbage.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar header " * 100))
    with pytest.raises(ArchiveError, match="corrupt archive"):
        unpack(archive, box.dest)


def test_missing_archive(box):
    with pytest.raises(ArchiveError, match="no such archive"):
        unpack(box.archives / "nope.tar", box.dest)


def test_destination_must_be_empty(box):
    (box.dest / "already").write_text("x")
    with pytest.raises(ImageError, match="not empty"):
        box.unpack([file("a", b"a")])


# --- Bounded failure ------------------------------------------------------------------

def test_decompression_bomb(box):
    archive = build_streamed(box.archives / "bomb.tar.gz", [zero_file("zeros", 64 << 20)], "gz")
    assert archive.stat().st_size < 200_000       # 64 MiB of zeros in ~65 KB
    with pytest.raises(ArchiveError, match="too big.*MAX_BYTES"):
        unpack(archive, box.dest, limits=Limits(max_bytes=8 << 20))
    assert not (box.dest / "zeros").exists() or (box.dest / "zeros").stat().st_size <= 8 << 20


def test_padding_bomb_after_the_archive_end(box):
    # A tiny tar followed by a mountain of compressed zeros: the drain must be bounded too.
    tar_path = box.tar([file("a", b"a")], "", "small.tar")
    archive = box.archives / "padded.tar.gz"
    with gzip.open(archive, "wb") as out:
        out.write(tar_path.read_bytes())
        for _ in range(32):
            out.write(bytes(1 << 20))
    with pytest.raises(ArchiveError, match="too big"):
        unpack(archive, box.dest, limits=Limits(max_bytes=4 << 20))


def test_too_many_entries(box):
    with pytest.raises(ArchiveError, match="more than 100 entries.*MAX_ENTRIES"):
        box.unpack([file(f"f{i}") for i in range(150)], limits=Limits(max_entries=100))


def test_huge_pax_header_is_refused(box):
    info, data = file("a", b"a")
    info.pax_headers = {"comment": "x" * (2 << 20)}
    with pytest.raises(ArchiveError, match="metadata header"):
        box.unpack([(info, data)])


# --- Odd but legal, and odd and illegal ------------------------------------------------------

@pytest.mark.skipif(not shutil.which("tar"), reason="needs GNU tar to write a sparse archive")
@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_member_keeps_its_holes(box, fmt):
    sparse = box.archives / "lastlog"
    with open(sparse, "wb") as f:              # like /var/log/lastlog: mostly holes
        for i in range(4):
            f.seek(i * (256 << 20))
            f.write(bytes([65 + i]) * 5000)
        f.truncate(1 << 30)
    archive = box.archives / "sparse.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", archive, "-C", box.archives,
                    "lastlog"], check=True)
    stats = unpack(archive, box.dest, limits=Limits(max_bytes=1 << 20))   # 1 MiB of real data
    out = box.dest / "lastlog"
    assert stats.bytes == out.stat().st_size == 1 << 30
    assert out.stat().st_blocks * 512 < 1 << 20     # holes stayed holes
    with open(sparse, "rb") as a, open(out, "rb") as b:
        for i in range(4):
            a.seek(i * (256 << 20)), b.seek(i * (256 << 20))
            assert a.read(6000) == b.read(6000)


@pytest.mark.parametrize("field, value", [("uid", 2**40), ("gid", 2**32 - 1), ("size", -1)])
def test_impossible_numbers_are_corrupt(box, field, value):
    info, data = file("f", b"x")
    setattr(info, field, value)
    with pytest.raises(ArchiveError, match="corrupt archive.*impossible size or owner"):
        box.unpack([(info, None if field == "size" else data)])


def test_non_utf8_names_keep_their_bytes(box):
    box.unpack([file("caf\udce9", b"latin-1 name")])     # surrogateescape for the byte 0xe9
    assert os.listdir(os.fsencode(box.dest)) == [b"caf\xe9"]


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("MINICONTAINER_UNPACK_MAX_ENTRIES", "10")
    monkeypatch.setenv("MINICONTAINER_UNPACK_MAX_BYTES", "")
    assert Limits.from_env() == Limits(max_entries=10)
    monkeypatch.setenv("MINICONTAINER_UNPACK_MAX_BYTES", "1G")
    with pytest.raises(ConfigError, match="MINICONTAINER_UNPACK_MAX_BYTES='1G' is not a number"):
        Limits.from_env()


def test_negative_size_in_a_long_name_header(box):
    # A GNU long-name header whose (base-256) size is negative: tarfile would compute a
    # negative read length from it.
    long = tarfile.TarInfo("././@LongLink")
    long.type, long.size = tarfile.GNUTYPE_LONGNAME, -1000
    archive = box.archives / "negative.tar"
    archive.write_bytes(long.tobuf(tarfile.GNU_FORMAT) + box.tar([file("f", b"x")]).read_bytes())
    with pytest.raises(ArchiveError, match="corrupt archive.*metadata header"):
        unpack(archive, box.dest)


def test_no_file_descriptors_leak(box, tmp_path):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    cases = [[file("a/b/c", b"x"), symlink("l", "/x"), hardlink("h", "a/b/c")],   # fine
             [symlink("evil", str(box.outside)), file("evil/x", b"x")],             # unsafe
             [file("a", b"x"), hardlink("h", "/etc/passwd")],                       # unsafe link
             [file(f"f{i}") for i in range(20)]]                                    # too many
    before = open_fds()
    for round_ in range(3):
        for i, entries in enumerate(cases):
            dest = tmp_path / f"d{round_}-{i}"
            dest.mkdir()
            try:
                unpack(build(box.archives / f"{round_}-{i}.tar", entries), dest,
                       limits=Limits(max_entries=10))
            except ArchiveError:
                pass
    assert open_fds() == before


# --- The adversarial set, continued (issue 7): chains, whiteouts, bombs of every format -------

def test_hardlink_chain_stays_inside(box):
    # c -> b -> a: each link names a regular file unpacked before it; a chain that ends in a
    # symlink (or starts outside) is refused like a single link would be.
    box.unpack([file("a", b"data"), hardlink("b", "a"), hardlink("c", "b")])
    assert os.stat(box.dest / "c").st_ino == os.stat(box.dest / "a").st_ino
    box.assert_outside_untouched()


def test_hardlink_to_a_symlink_chain_pointing_out(box):
    for entries in ([symlink("l1", "l2"), symlink("l2", str(box.outside / "victim")), hardlink("h", "l1")],
                    [symlink("l1", "/etc/passwd"), hardlink("h", "l1")],
                    [symlink("inside", "f"), file("f", b"x"), hardlink("h", "inside")]):   # even inside
        for d in box.dest.iterdir():
            shutil.rmtree(d) if d.is_dir() and not d.is_symlink() else d.unlink()
        message = box.refuses(entries)
        assert "symlink" in message
    assert os.stat(box.outside / "victim").st_nlink == 1


def test_symlink_loop_then_write_below(box):
    box.refuses([symlink("a", "b"), symlink("b", "a"), file("a/x", b"x")])


def test_dot_entry_symlink_then_dir_entries(box):
    # "./" as a symlink first: the root can never become a link, whatever follows.
    box.refuses([symlink("./", str(box.outside)), directory("sub"), file("sub/pwned", b"x")])
    assert not os.path.islink(box.dest)


@pytest.mark.parametrize("compression", ["gz", "xz", "bz2"])
def test_decompression_bomb_in_every_format(box, compression):
    archive = build_streamed(box.archives / f"bomb.tar.{compression}", [zero_file("zeros", 32 << 20)],
                             compression)
    assert archive.stat().st_size < 100_000       # 32 MiB of zeros in a few KB
    with pytest.raises(ArchiveError, match="too big.*MAX_BYTES"):
        unpack(archive, box.dest, limits=Limits(max_bytes=4 << 20))
    box.assert_outside_untouched()


def test_many_empty_entries_are_bounded(box):
    # Empty entries cost 512 bytes each and no data: only the entry count stops them.
    entries = [directory("d")] + [file(f"d/{i}") for i in range(3000)]
    with pytest.raises(ArchiveError, match="more than 2000 entries.*MAX_ENTRIES"):
        box.unpack(entries, "gz", limits=Limits(max_entries=2000, max_bytes=1 << 30))


# --- Layers (OCI/Docker): whiteouts must not reach through a symlink either ----------------

def unpack_layer_of(box, entries):
    from minicontainer.storage.layer_tar import unpack_layer
    archive = box.tar(entries, name="layer.tar")
    with open(archive, "rb") as blob:
        return unpack_layer(blob, box.dest, name="layer.tar")


@pytest.mark.parametrize("entries", [
    lambda out: [symlink("evil", str(out)), file("evil/.wh.victim")],                 # absolute
    lambda out: [directory("d"), symlink("d/evil", "../../outside"), file("d/evil/.wh.victim")],
    lambda out: [symlink("evil", str(out)), file("evil/.wh..wh..opq")],               # opaque marker
    lambda out: [symlink("a", "b"), symlink("b", str(out)), file("a/.wh.victim")],   # a chain
], ids=["whiteout", "relative", "opaque", "chain"])
def test_whiteout_under_a_symlinked_directory(box, entries):
    with pytest.raises(ArchiveError, match="unsafe layer.*symlink"):
        unpack_layer_of(box, entries(box.outside))
    box.assert_outside_untouched()
    assert (box.outside / "victim").read_text() == "original"


@needs_root
def test_whiteout_of_a_symlink_hides_only_the_name(box):
    # `.wh.evil` next to a symlink `evil -> outside/victim` in the same layer: the link stays
    # (OCI: a whiteout hides the layers below), its target is never touched.
    unpack_layer_of(box, [symlink("evil", str(box.outside / "victim")), file(".wh.evil")])
    assert os.readlink(box.dest / "evil") == str(box.outside / "victim")
    box.assert_outside_untouched()


@pytest.mark.parametrize("name", [".wh..", "d/.wh..", ".wh.", "../.wh.x"])
def test_whiteouts_that_name_no_file(box, name):
    with pytest.raises(ArchiveError, match="unsafe"):
        unpack_layer_of(box, [directory("d"), file(name)])
    box.assert_outside_untouched()
