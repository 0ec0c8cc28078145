"""ELF headers: which loader and which shared libraries a program needs.

An ELF executable names, in its *program headers*, everything the kernel and the
dynamic loader must do before main() runs:

  PT_INTERP    the loader the kernel starts first ("/lib64/ld-linux-x86-64.so.2");
               a static program has none, the kernel jumps straight to its code
  PT_DYNAMIC   a table of (tag, value) pairs for that loader:
                 DT_NEEDED   a library to load ("libc.so.6"), one entry per library
                 DT_RUNPATH / DT_RPATH   extra directories to search, set at link time
                 DT_STRTAB   where the names above are stored (an address in memory)

To put a program into an image we copy the program, its loader, and the *closure*
of DT_NEEDED: the libraries, the libraries they need, and so on. We read the headers
ourselves instead of running ldd(1), because ldd runs the program's loader on the
host — for an untrusted binary that is running it (see the BUGS section of ldd(1)).

Man pages: elf(5), ld.so(8), ldd(1).
Shell equivalent:  readelf -lW PROGRAM | grep interpreter
                   readelf -dW PROGRAM | grep -E 'NEEDED|RUNPATH|RPATH'
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29

# e_machine → Debian's multiarch directory name (where its libraries live).
MULTIARCH = {62: "x86_64-linux-gnu", 183: "aarch64-linux-gnu", 3: "i386-linux-gnu",
             40: "arm-linux-gnueabihf", 243: "riscv64-linux-gnu", 22: "s390x-linux-gnu",
             21: "powerpc64le-linux-gnu"}


class ElfError(ValueError):
    """A file that is not ELF, is truncated, or whose libraries cannot be found."""


@dataclass(frozen=True)
class ElfInfo:
    """What the loader needs to know about one ELF file."""

    path: str
    bits: int                      # 32 or 64 (EI_CLASS)
    machine: int                   # e_machine: 62 is x86-64
    interpreter: str | None        # PT_INTERP, None for a static program
    needed: tuple[str, ...]        # DT_NEEDED, in link order
    runpath: tuple[str, ...]       # DT_RUNPATH (or DT_RPATH when there is no RUNPATH)
    soname: str | None             # DT_SONAME of a library

    @property
    def is_static(self) -> bool:
        """True when the kernel can run it with no loader and no library at all."""
        return self.interpreter is None and not self.needed


def read_elf(path: str) -> ElfInfo:
    """Parse the ELF header, program headers and dynamic section of `path`."""
    try:
        with open(path, "rb") as f:
            return _parse_elf(f, path)
    except OSError as e:
        raise ElfError(f"cannot read {path}: {os.strerror(e.errno)}") from None
    except struct.error:
        raise ElfError(f"{path}: truncated ELF file") from None


def _parse_elf(f, path: str) -> ElfInfo:
    ident = f.read(16)
    if ident[:4] != ELF_MAGIC:
        raise ElfError(f"{path}: not an ELF file (no \\x7fELF magic)")
    bits = {1: 32, 2: 64}.get(ident[4])
    order = {1: "<", 2: ">"}.get(ident[5])
    if bits is None or order is None:
        raise ElfError(f"{path}: unknown ELF class/byte order {ident[4]}/{ident[5]}")
    # e_type … e_shstrndx: the same fields, addresses are 4 or 8 bytes wide.
    ehdr = order + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH")
    fields = struct.unpack(ehdr, f.read(struct.calcsize(ehdr)))
    machine, phoff, phentsize, phnum = fields[1], fields[4], fields[8], fields[9]
    segments = _read_program_headers(f, order, bits, phoff, phentsize, phnum)
    interp = None
    for ptype, offset, _vaddr, filesz in segments:
        if ptype == PT_INTERP:
            f.seek(offset)
            interp = f.read(filesz).split(b"\0", 1)[0].decode()
    needed, runpath, rpath, soname = _read_dynamic(f, order, bits, segments)
    return ElfInfo(path, bits, machine, interp, tuple(needed),
                   tuple(runpath or rpath), soname)


def _read_program_headers(f, order, bits, phoff, phentsize, phnum):
    """[(p_type, p_offset, p_vaddr, p_filesz)] — the fields we use, in file order."""
    # Phdr64 puts p_flags second, Phdr32 puts it seventh: hence two layouts.
    fmt = order + ("IIIIIIII" if bits == 32 else "IIQQQQQQ")
    size = struct.calcsize(fmt)
    out = []
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        p = struct.unpack(fmt, f.read(size))
        if bits == 32:
            out.append((p[0], p[1], p[2], p[4]))
        else:
            out.append((p[0], p[2], p[3], p[5]))
    return out


def _read_dynamic(f, order, bits, segments):
    """DT_NEEDED, DT_RUNPATH, DT_RPATH and DT_SONAME strings from PT_DYNAMIC."""
    dyn = [s for s in segments if s[0] == PT_DYNAMIC]
    if not dyn:
        return [], [], [], None
    fmt = order + ("iI" if bits == 32 else "qQ")
    size = struct.calcsize(fmt)
    _, offset, _, filesz = dyn[0]
    f.seek(offset)
    entries = []
    for _ in range(filesz // size):
        tag, val = struct.unpack(fmt, f.read(size))
        if tag == DT_NULL:
            break
        entries.append((tag, val))
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        return [], [], [], None
    # DT_STRTAB is a memory address: find the PT_LOAD segment that maps it to the file.
    base = _vaddr_to_offset(segments, strtab)
    text = {t: [] for t in (DT_NEEDED, DT_RUNPATH, DT_RPATH, DT_SONAME)}
    for tag, val in entries:
        if tag in text:
            text[tag].append(_read_cstring(f, base + val))
    split = lambda values: [d for v in values for d in v.split(":") if d]  # noqa: E731
    soname = text[DT_SONAME][0] if text[DT_SONAME] else None
    return text[DT_NEEDED], split(text[DT_RUNPATH]), split(text[DT_RPATH]), soname


def _vaddr_to_offset(segments, vaddr: int) -> int:
    for ptype, offset, start, filesz in segments:
        if ptype == PT_LOAD and start <= vaddr < start + filesz:
            return vaddr - start + offset
    raise struct.error("DT_STRTAB outside every PT_LOAD segment")


def _read_cstring(f, offset: int) -> str:
    f.seek(offset)
    raw = b""
    while b"\0" not in raw:
        chunk = f.read(256)
        if not chunk:
            raise struct.error("unterminated string")
        raw += chunk
    return raw.split(b"\0", 1)[0].decode()


# ---- the closure -------------------------------------------------------------------------

def default_library_dirs(machine: int) -> tuple[str, ...]:
    """Where ld.so looks when there is no /etc/ld.so.cache (its "trusted" directories).

    An image has no ld.so.cache, so these are the directories that work inside it.
    """
    arch = MULTIARCH.get(machine)
    multi = (f"/lib/{arch}", f"/usr/lib/{arch}") if arch else ()
    return multi + ("/lib64", "/usr/lib64", "/lib", "/usr/lib")


def library_closure(program: str, extra_dirs: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Everything `program` loads: [(path inside the image, host file)], loader first.

    A library goes into the image at the path the loader will look it up by
    (search directory + DT_NEEDED name), so the image needs no ld.so.cache.
    Raises ElfError naming the missing library and who needs it.
    """
    top = read_elf(program)
    found: list[tuple[str, str]] = []
    if top.interpreter:
        found.append((top.interpreter, top.interpreter))
    seen_names: set[str] = set()
    queue = [top]
    while queue:
        obj = queue.pop(0)
        for name in obj.needed:
            if name in seen_names:
                continue
            seen_names.add(name)
            host = find_library(name, obj, top, extra_dirs)
            found.append((image_path_of(host, obj, top), host))
            queue.append(read_elf(host))
    return found


def image_path_of(host: str, needer: ElfInfo, top: ElfInfo) -> str:
    """Where a library goes in the image: where it is, if the image's loader looks there.

    A library found through [app] search (like /usr/local/lib) would be invisible to the
    loader inside the image, which has no ld.so.cache: it goes to the first default directory.
    """
    directory = os.path.dirname(host)
    if directory in default_library_dirs(needer.machine) or directory in _runpath(needer, top):
        return host
    return os.path.join(default_library_dirs(needer.machine)[0], os.path.basename(host))


def _runpath(needer: ElfInfo, top: ElfInfo) -> list[str]:
    """DT_RUNPATH/DT_RPATH directories with $ORIGIN replaced by the needer's directory."""
    origin = os.path.dirname(needer.path)
    return [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            for d in needer.runpath or top.runpath]


def find_library(name: str, needer: ElfInfo, top: ElfInfo, extra_dirs=()) -> str:
    """The first file called `name` the loader would pick for `needer`, as ld.so(8) orders it."""
    if "/" in name:
        return name
    dirs = _runpath(needer, top) + list(extra_dirs) + list(default_library_dirs(needer.machine))
    for d in dirs:
        candidate = os.path.join(d, name)
        if os.path.isfile(candidate) and _same_abi(candidate, needer):
            return candidate
    raise ElfError(f"{name} (needed by {needer.path}) not found in {', '.join(dirs)} — "
                   "install the package that provides it, or add its directory to [app] search")


def _same_abi(candidate: str, needer: ElfInfo) -> bool:
    """ld.so skips a library of the wrong class or machine (a 32-bit libc for a 64-bit program)."""
    try:
        info = read_elf(candidate)
    except ElfError:
        return False
    return info.bits == needer.bits and info.machine == needer.machine
