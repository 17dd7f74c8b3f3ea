"""Text for the ``charlm`` task, without torch: the corpus, its split over clients, the vocabulary.

``[task] corpus``:

- ``"stdlib"`` (default): the docstrings of the Python standard library. The ``.py`` files under
  ``sysconfig.get_paths()["stdlib"]`` are read in sorted path order (``site-packages``, tests,
  ``idlelib``, ``turtledemo``, ``lib2to3`` and ``ensurepip`` left out); a module's document is its
  module, class and function docstrings (``ast.get_docstring``) in source order. The text is
  therefore fixed by the Python version that runs netemu.
- a path to a UTF-8 text file (its documents: paragraphs, split at blank lines) or to a folder (its
  files, sorted by path, are the documents), relative to the scenario's folder.

Client ``i`` takes whole documents, in order, from where client ``i − 1`` stopped, until it has
``chars_per_client`` characters; the last document is cut there and its rest skipped. So every
client holds one module (or a group of small ones) and clients differ. Characters map to a fixed
vocabulary: newline, printable ASCII (32–126) and one token for everything else (``V = 97``).
"""

from __future__ import annotations

import ast
import os
import sysconfig
from pathlib import Path

import numpy as np

from netemu.errors import ScenarioError

VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))
UNKNOWN = len(VOCAB)
V = len(VOCAB) + 1
_INDEX = {c: i for i, c in enumerate(VOCAB)}
SKIP = {"site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "lib2to3",
        "ensurepip", "__pycache__"}


def stdlib_files() -> list[Path]:
    """The standard library's ``.py`` files, sorted by path, without tests and bundled packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("config-"))
        out += [Path(dirpath) / f for f in sorted(files) if f.endswith(".py")]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def docstrings(source: str) -> str:
    """A module's docstrings (module, classes, functions) in source order, blank-line separated."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    found = [(getattr(n, "lineno", 0), ast.get_docstring(n, clean=True)) for n in ast.walk(tree)
             if isinstance(n, kinds)]
    return "\n\n".join(d for _, d in sorted(found, key=lambda t: t[0]) if d)


def resolve(corpus: str, base_dir=None) -> Path:
    path = Path(corpus)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def documents(corpus: str, base_dir=None, where: str = "[task] corpus"):
    """The corpus as a lazy sequence of ``(name, text)`` documents (see the module docstring)."""
    if corpus == "stdlib":
        for path in stdlib_files():
            try:
                text = docstrings(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
            if text:
                yield path.stem, text
        return
    path = resolve(corpus, base_dir)
    if path.is_dir():
        for f in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.as_posix()):
            text = _read(f, corpus, where)
            if text.strip():
                yield f.name, text
        return
    if not path.is_file():
        raise ScenarioError(f"{where} = {corpus!r}: no such file or folder; give \"stdlib\", a UTF-8 text "
                            f"file or a folder of them (relative paths start at the scenario's folder)")
    for i, para in enumerate(_read(path, corpus, where).split("\n\n")):
        if para.strip():
            yield f"paragraph {i}", para


def _read(path: Path, corpus: str, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{where} = {corpus!r}: cannot read {path.name} as UTF-8 text "
                            f"({type(e).__name__}); give UTF-8 text files") from None


def check(corpus: str, base_dir=None, where: str = "[task] corpus") -> str:
    """The corpus as the task will read it (a file or folder made absolute, ``"stdlib"`` as it is);
    raises the one-line error for a missing, unreadable or empty one."""
    if corpus == "stdlib":
        return corpus
    for _ in documents(corpus, base_dir, where):
        return str(resolve(corpus, base_dir).absolute())
    raise ScenarioError(f"{where} = {corpus!r} holds no text; point it at a non-empty UTF-8 text file "
                        f"or a folder of them, or use corpus = \"stdlib\"")


def client_texts(corpus: str, n: int, chars: int, base_dir=None,
                 where: str = "[task] corpus") -> tuple[list[str], list[list[str]]]:
    """``n`` texts of ``chars`` characters, one per client, and the names of each one's documents."""
    texts, names, cur, cur_names, total = [], [], "", [], 0
    for name, text in documents(corpus, base_dir, where):
        total += len(text)
        cur = f"{cur}\n\n{text}" if cur else text
        cur_names.append(name)
        if len(cur) >= chars:
            texts.append(cur[:chars])
            names.append(cur_names)
            cur, cur_names = "", []
            if len(texts) == n:
                return texts, names
    if total == 0:
        raise ScenarioError(f"{where} = {corpus!r} holds no text; point it at a non-empty UTF-8 text file "
                            f"or a folder of them, or use corpus = \"stdlib\"")
    raise ScenarioError(f"[task] chars_per_client = {chars}: corpus {corpus!r} has {total} characters, "
                        f"enough for {len(texts)} of the {n} clients; lower chars_per_client or use fewer nodes")


def encode(text: str) -> np.ndarray:
    """Token ids of ``text`` (int64)."""
    return np.fromiter((_INDEX.get(c, UNKNOWN) for c in text), dtype=np.int64, count=len(text))


def decode(tokens) -> str:
    return "".join(VOCAB[t] if t < UNKNOWN else "\ufffd" for t in np.asarray(tokens).tolist())


def windows(tokens: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``[W, context]`` and next-character targets of the windows starting every ``context``."""
    W = (len(tokens) - 1) // context
    starts = np.arange(W)[:, None] * context + np.arange(context)[None, :]
    return tokens[starts], tokens[starts + 1]


def parameter_count(context: int = 32, d_model: int = 64, layers: int = 2, heads: int = 4) -> int:
    """Parameters of charlm's model (``netemu.tasks.charlm.CharTransformer``):
    ``V·d + context·d + layers·(12d² + 13d) + 2d + d·V + V`` (heads do not change it)."""
    d = d_model
    return V * d + context * d + layers * (12 * d * d + 13 * d) + 2 * d + d * V + V
