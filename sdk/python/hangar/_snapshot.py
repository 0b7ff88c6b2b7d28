"""Deterministic tar.gz snapshots of a source directory (as the CLI's snapshot.Write).

Ignore files .gitignore, .amlignore and .hangarignore are read in every
directory; patterns follow gitignore's common rules: "#" comments, "!"
re-includes, a trailing "/" matches directories only, a "/" elsewhere anchors
the pattern to the directory of the file, "*", "?", "[...]" and "**" glob.
The last matching pattern wins; in one directory .amlignore's patterns come
after .gitignore's and .hangarignore's after both. ".git" is always left out.
"""

import fnmatch
import gzip
import io
import os
import re
import tarfile

from .exceptions import UserErrorException

MAX_BYTES = 300 * 1024 * 1024
MAX_FILES = 2000
_IGNORE_FILES = (".gitignore", ".amlignore", ".hangarignore")


class SnapshotException(UserErrorException):
    """The source directory is over a limit or cannot be read."""


def _compile(pattern):
    """A regexp for a gitignore glob, matched against a slash-separated path."""
    i, out = 0, []
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1:j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body + "]")
                i = j + 1
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


class _Rule:
    def __init__(self, base, line):
        self.negate = line.startswith("!")
        if self.negate:
            line = line[1:]
        self.dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        self.base = base  # directory of the ignore file, relative ("" = root)
        self.anchored = anchored
        self.rx = _compile(line)

    def matches(self, rel, is_dir):
        if self.dir_only and not is_dir:
            return False
        if self.base:
            if not rel.startswith(self.base + "/"):
                return False
            rel = rel[len(self.base) + 1:]
        if self.anchored:
            return bool(self.rx.match(rel))
        return bool(self.rx.match(rel.rsplit("/", 1)[-1]))


def _read_rules(root, rel_dir):
    rules = []
    for name in _IGNORE_FILES:
        path = os.path.join(root, rel_dir, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            line = line.rstrip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("\\#") or line.startswith("\\!"):
                line = line[1:]
            rules.append(_Rule(rel_dir, line))
    return rules


def _ignored(rules, rel, is_dir):
    out = False
    for r in rules:
        if r.matches(rel, is_dir):
            out = not r.negate
    return out


def list_files(root):
    """The (relative path, absolute path, kind) entries of root's snapshot, sorted."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise SnapshotException("source_directory {} is not a directory".format(root))
    entries = []

    def walk(rel_dir, rules):
        rules = rules + _read_rules(root, rel_dir)
        try:
            names = sorted(os.listdir(os.path.join(root, rel_dir)))
        except OSError as e:
            raise SnapshotException("read {}: {}".format(os.path.join(root, rel_dir), e))
        for name in names:
            if name == ".git":
                continue
            rel = name if not rel_dir else rel_dir + "/" + name
            full = os.path.join(root, rel)
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not (target == root or target.startswith(root + os.sep)):
                    raise SnapshotException("{} is a symlink that leads outside the source directory; "
                                            "exclude it in .amlignore".format(rel))
                if not _ignored(rules, rel, os.path.isdir(full)):
                    entries.append((rel, full, "link"))
                continue
            is_dir = os.path.isdir(full)
            if _ignored(rules, rel, is_dir):
                continue
            if is_dir:
                entries.append((rel, full, "dir"))
                walk(rel, rules)
            elif os.path.isfile(full):
                entries.append((rel, full, "file"))

    walk("", [])
    entries.sort(key=lambda e: e[0])
    return entries


def write(root, max_bytes=MAX_BYTES, max_files=MAX_FILES):
    """The snapshot of root as tar.gz bytes; raises SnapshotException over the limits."""
    entries = list_files(root)
    files = [e for e in entries if e[2] == "file"]
    total = sum(os.path.getsize(e[1]) for e in files)
    if len(files) > max_files:
        raise SnapshotException(
            "Your snapshot has {} files, over the limit of {}: exclude files with .amlignore".format(len(files), max_files))
    if total > max_bytes:
        raise SnapshotException("Your total snapshot size exceeds the limit of {:.1f} MB ({:.1f} MB): exclude files "
                                "with .amlignore".format(max_bytes / 1024 / 1024, total / 1024 / 1024))
    root = os.path.abspath(root)
    return _pack([(rel, full, kind) for rel, full, kind in entries], root)


def write_path(path):
    """One file or folder packed under its own base name (a model's files), as tar.gz bytes."""
    path = os.path.abspath(path)
    base = os.path.basename(path.rstrip(os.sep))
    if os.path.isfile(path):
        return _pack([(base, path, "file")], os.path.dirname(path))
    entries = [(base, path, "dir")]
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for d in dirnames:
            full = os.path.join(dirpath, d)
            entries.append((base + "/" + os.path.relpath(full, path).replace(os.sep, "/"), full, "dir"))
        for f in filenames:
            full = os.path.join(dirpath, f)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            entries.append((base + "/" + os.path.relpath(full, path).replace(os.sep, "/"), full, "file"))
    entries.sort(key=lambda e: e[0])
    return _pack(entries, os.path.dirname(path))


def _pack(entries, root):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, full, kind in entries:
            ti = tarfile.TarInfo(rel)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tar.addfile(ti)
            elif kind == "link":
                ti.type = tarfile.SYMTYPE
                ti.mode = 0o777
                ti.linkname = os.path.relpath(os.path.realpath(full), os.path.realpath(os.path.dirname(full)))
                tar.addfile(ti)
            else:
                st = os.stat(full)
                ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
                ti.size = st.st_size
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def extract(data, dest, members=None):
    """Unpacks tar.gz bytes into dest, refusing paths that leave it; returns the names written."""
    dest = os.path.abspath(dest)
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            name = m.name.lstrip("./") if m.name.startswith("./") else m.name
            if members is not None and name not in members:
                continue
            target = os.path.abspath(os.path.join(dest, name))
            if not (target == dest or target.startswith(dest + os.sep)) or os.path.isabs(name):
                raise UserErrorException("archive entry {} leads outside {}".format(m.name, dest))
            if m.isdir():
                os.makedirs(target, exist_ok=True)
            elif m.isfile():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                src = tar.extractfile(m)
                with open(target, "wb") as f:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        f.write(chunk)
                if m.mode & 0o111:
                    os.chmod(target, 0o755)
                written.append(name)
    return written


def names(data):
    """The regular files of tar.gz bytes."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return [m.name for m in tar.getmembers() if m.isfile()]


# fnmatch is kept for callers matching prefixes like download_files.
match = fnmatch.fnmatch
