"""PT_INTERP: the program the kernel starts before a dynamically linked ELF program.

    man 5 elf, man 8 ld.so                  shell: readelf -l BIN | grep interpreter

An ELF executable's *program headers* tell the kernel how to load it. One of them, PT_INTERP,
holds a path — "/lib64/ld-linux-x86-64.so.2" on x86-64 — and execve(2) then maps and starts
that loader first; the loader maps the libraries and jumps to the program. A static program
(busybox) has no PT_INTERP. When the path is missing, execve fails with ENOENT although the
program itself is there: process.py turns that into "its ELF interpreter … is not in the image".

Only this one field is read here, in the container's PID 1 and in the VM's boot-file builder.
rootfs-builder/elf.py reads every header (DT_NEEDED too), and runs on the host as a tool of its own.
"""
from __future__ import annotations

import io
import struct

PT_INTERP = 3                                        # p_type of the loader's path


def read_pt_interp(f) -> str | None:
    """The PT_INTERP path of an open ELF file (binary mode), or None: not ELF, or static.
    Raises struct.error on a truncated file."""
    ident = f.read(16)                               # e_ident: magic, class, byte order, …
    if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"   # ELFCLASS64, ELFDATA2LSB
    ehdr = order + ("HHIQQQIHHH" if wide else "HHIIIIIHHH")      # e_type … e_phnum
    header = struct.unpack(ehdr, f.read(struct.calcsize(ehdr)))
    phoff, phentsize, phnum = header[4], header[8], header[9]
    phdr = order + ("IIQQQQ" if wide else "IIIII")   # Elf64_Phdr: type, flags, offset, …, filesz
    for i in range(phnum):                            # Elf32_Phdr: type, offset, …, filesz
        f.seek(phoff + i * phentsize)
        fields = struct.unpack(phdr, f.read(struct.calcsize(phdr)))
        p_type, p_offset, p_filesz = fields[0], fields[2 if wide else 1], fields[-1]
        if p_type == PT_INTERP:                       # "/lib64/ld-linux-x86-64.so.2\0"
            f.seek(p_offset)
            return f.read(p_filesz).split(b"\0", 1)[0].decode(errors="replace")
    return None


def is_static(data: bytes) -> bool:
    """True for an ELF image in memory that names no loader: the kernel can start it alone."""
    return data[:4] == b"\x7fELF" and read_pt_interp(io.BytesIO(data)) is None
