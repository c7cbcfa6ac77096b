"""Dataset readers (S3-Rec/TIGER, ComiRec/SEATER, LightGCN text formats, Yambda parquet) and the S3-Rec writer.

Formats accepted, exactly:

``s3rec``: a directory with ``sequences.txt`` (or that file itself) and optionally
    ``item2attributes.json``. One user per line: ``user item item ...``, whitespace
    separated, items in time order. The json maps an item id (string) to a list of
    attribute ids.
``comirec``: a ``.tsv``/``.txt``/``.csv`` file, or a directory of them, read in name order: its
    ``*_train/_valid/_test`` files when it has any (ComiRec's splits, disjoint users), else all of
    them but ComiRec's ``*_user_map/_item_map/_cate_map/_item_cate`` files. Each file is one of:
      - interaction log (ComiRec raw files): ``user,item[,timestamp]`` per line; a user's
        items are ordered by timestamp (stable, so file order breaks ties and is used when
        there is no timestamp);
      - SEATER tab-separated rows: ``user<TAB>history<TAB>targets`` with the item lists
        comma- or space-separated (either may be empty); the user's sequence is history
        then targets. A user may appear on one such row only (prefix-sample files would
        otherwise be counted twice), and a repeat is reported with both line numbers.
``lightgcn``: a directory with ``train.txt`` and optionally ``test.txt``, lines
    ``user item item ...`` (a bare ``user`` line is allowed, as LightGCN writes them); a
    user's sequence is their train items then their test items (a user with no item in either
    file is left out, as Yambda users without a positive event are).
``yambda``: a Yambda parquet file (``likes.parquet``, ``listens.parquet``,
    ``multi_event.parquet``, ...) or a directory holding ``likes.parquet``; the flat layout
    (one row per event: ``uid``, ``timestamp``, ``item_id``, ...) or the sequential one (one
    row per user, the same columns as lists). A user's items are ordered by timestamp (file
    order breaks ties). Positive events only: a listen counts when ``played_ratio_pct`` >=
    `YAMBDA_MIN_PLAYED` (our choice, the usual "listened to at least half" rule), and in
    ``multi_event`` files only ``listen`` and ``like`` rows are kept (dislikes, unlikes and
    undislikes are not interactions to predict).

User and item ids may be any integers in 0..2^63-1: items are renumbered 1..n_items in
increasing order of their original id (contiguous 1..N data keeps its ids); users keep file
order in the one-row-per-user formats (s3rec, SEATER rows, LightGCN) and come in increasing id
order from interaction logs (ComiRec logs, Yambda; `user_split` assigns users by this order).
The originals stay in ``Interactions.item_ids`` / ``user_ids``. Every problem in a file raises
one `DataError` naming the file and line. Lines are parsed in bulk (one regex check each, one
integer conversion for the file): Beauty (198K interactions) loads in under a second.
Parquet rows are counted from 0 ("row index"), as pandas does.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np

from seater.data.interactions import Interactions
from seater.errors import ConfigError, DataError

FORMATS = ("s3rec", "comirec", "lightgcn", "yambda")
YAMBDA_MIN_PLAYED = 50  # percent of a track played for a listen to count as an interaction
_INTS = re.compile(r"-?[0-9]+(?:[ \t]+-?[0-9]+)*")
_INT = re.compile(r"-?[0-9]+")  # ASCII digits only: int() would also take Arabic-Indic and other digits
# the usual ComiRec log line; at most 18 digits a field, so no id it passes overflows int64 (other lines
# are checked one by one, in file order)
_LOG = re.compile(r"[0-9]{1,18},[0-9]{1,18}(?:,[0-9]{1,18})?")
MAX_ID = 2**63 - 1  # ids and timestamps are stored as int64


# --------------------------------------------------------------------------- parsing helpers
def _read_text(path: Path) -> str:
    """UTF-8 text (a leading byte-order mark is dropped), whatever the locale."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def _read_lines(path: Path) -> list[str]:
    # lines end at "\n" only (and "\r\n"): str.splitlines would also split at form feeds, "\x1c".."\x1e",
    # "\x85" and U+2028, so one line with such a byte would be read as two users
    lines = [line.removesuffix("\r") for line in _read_text(path).split("\n")]
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: file is empty")
    return lines


def _int_tokens(text: str, path: Path, lineno: int, what: str) -> list[int]:
    """Whitespace-separated integers of one field; any other token is reported."""
    text = text.strip()
    if not text:
        return []
    if not _INTS.fullmatch(text):
        bad = next((t for t in text.split() if not _INT.fullmatch(t)), text)
        raise DataError(f"{path}:{lineno}: {what} must be integers, got {bad!r}")
    values = list(map(int, text.split()))
    if min(values) < 0:
        raise DataError(f"{path}:{lineno}: negative id {min(values)} in {what}")
    if max(values) > MAX_ID:
        raise DataError(f"{path}:{lineno}: id {max(values)} too large (max 2^63-1) in {what}")
    return values


def _build(
    users: np.ndarray,
    flat: np.ndarray,
    lengths: np.ndarray,
    name: str,
    attributes: dict[int, list[int]] | None = None,
    source: str = "",
) -> Interactions:
    """Renumber items 1..N (sorted original ids) and assemble `Interactions`.

    users: original id per row; flat: every row's original item ids, concatenated;
    lengths: items per row.
    """
    if len(users) == 0:
        raise DataError(f"{source or name}: no user has any item")
    uniq, inverse = np.unique(flat, return_inverse=True)
    internal = inverse.reshape(-1).astype(np.int64) + 1
    ends = np.cumsum(lengths).tolist()
    sequences = [internal[a:b] for a, b in zip([0] + ends[:-1], ends)]  # views; np.split is 10x slower
    item_ids = np.concatenate([[-1], uniq]).astype(np.int64)

    item_attributes = None
    if attributes is not None:
        all_attr = np.unique(np.fromiter((a for v in attributes.values() for a in v), dtype=np.int64))
        empty = np.zeros(0, dtype=np.int64)
        item_attributes = [empty] * (len(uniq) + 1)
        pos = {int(orig): i + 1 for i, orig in enumerate(uniq.tolist())}
        for orig, attrs in attributes.items():
            i = pos.get(orig)
            if i is not None and attrs:  # attributes of items never interacted with are dropped
                item_attributes[i] = np.searchsorted(all_attr, np.asarray(attrs, dtype=np.int64)) + 1
    return Interactions(
        sequences=sequences,
        n_items=len(uniq),
        user_ids=np.asarray(users, dtype=np.int64),
        item_ids=item_ids,
        item_attributes=item_attributes,
        name=name,
    )


def _user_item_lines(path: Path, allow_empty: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every non-blank ``user item item ...`` line of `path`, parsed in bulk.

    Returns (line numbers, users, items of all lines concatenated, items per line), int64.
    A line that fails the bulk check is re-parsed alone to name the offending token.
    """
    lines = _read_lines(path)
    linenos, tokens = [], []
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if not _INTS.fullmatch(text):
            _int_tokens(text, path, lineno, "user and item ids")  # raises with the bad token
        linenos.append(lineno)
        tokens.append(text.split())
    counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    try:
        values = np.fromiter(map(int, itertools.chain.from_iterable(tokens)), dtype=np.int64, count=int(counts.sum()))
    except OverflowError:  # an id outside int64: re-parse line by line to name it
        for lineno, t in zip(linenos, tokens):
            _int_tokens(" ".join(t), path, lineno, "user and item ids")
        raise
    ends = np.cumsum(counts)
    negative = np.flatnonzero(values < 0)
    if negative.size:
        row = int(np.searchsorted(ends, negative[0], side="right"))
        raise DataError(f"{path}:{linenos[row]}: negative id {values[negative[0]]} in user and item ids")
    if not allow_empty and (counts < 2).any():
        row = int(np.argmax(counts < 2))
        raise DataError(f"{path}:{linenos[row]}: expected 'user item item ...', got a user with no items")
    starts = ends - counts
    is_item = np.ones(len(values), dtype=bool)
    is_item[starts] = False
    return np.asarray(linenos, dtype=np.int64), values[starts], values[is_item], counts - 1


def _check_unique_users(path: Path, linenos: np.ndarray, users: np.ndarray) -> None:
    """Raise at the first line whose user already had a line in the same file."""
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    repeat = np.flatnonzero(sorted_users[1:] == sorted_users[:-1]) + 1
    if repeat.size:
        second = int(order[repeat].min())  # earliest line that repeats a user
        first = int(np.flatnonzero(users == users[second])[0])
        raise DataError(f"{path}:{linenos[second]}: user {users[second]} already appeared on line {linenos[first]}")


def _from_lists(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(q) for q in seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def _dataset_name(path: Path) -> str:
    path = path.resolve()
    return (path.parent if path.is_file() else path).name or "dataset"


# --------------------------------------------------------------------------- s3rec
class _Pairs(list):
    """A JSON object's (key, value) pairs, in file order."""


def _read_attributes(path: Path) -> dict[int, list[int]]:
    text = _read_text(path)
    try:
        raw = json.loads(text, object_pairs_hook=_Pairs)  # pairs, so a repeated item id is seen
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e})") from None
    except RecursionError:
        raise DataError(f"{path}: not an item-to-attributes file (nested too deeply)") from None
    if not isinstance(raw, _Pairs):
        raise DataError(f"{path}:1: expected an object mapping item id to a list of attribute ids")
    out: dict[int, list[int]] = {}
    for key, value in raw:
        if not _INT.fullmatch(str(key)) or int(key) < 0 or int(key) > MAX_ID:
            raise DataError(f"{path}: key {key!r}: item ids must be integers in 0..2^63-1")
        if int(key) in out:
            raise DataError(f"{path}: key {key!r}: item {int(key)} is listed twice")
        if type(value) is not list or not all(isinstance(a, int) and not isinstance(a, bool) and 0 <= a <= MAX_ID for a in value):
            raise DataError(f"{path}: key {key!r}: expected a list of non-negative integer attribute ids (at most 2^63-1), got {value!r}")
        out[int(key)] = value
    return out


def load_s3rec(path: str | Path) -> Interactions:
    """S3-Rec/TIGER text data: a directory with ``sequences.txt`` [+ ``item2attributes.json``], or the file."""
    path = Path(path)
    seq_file, *attr_file = _s3rec_files(path)
    linenos, users, flat, lengths = _user_item_lines(seq_file, allow_empty=False)
    _check_unique_users(seq_file, linenos, users)
    attributes = _read_attributes(attr_file[0]) if attr_file else None
    return _build(users, flat, lengths, _dataset_name(path), attributes, str(seq_file))


def _s3rec_files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"{path}: path not found")
    seq_file = path / "sequences.txt" if path.is_dir() else path
    if not seq_file.exists():
        raise DataError(f"{seq_file}: file not found")
    attr_file = seq_file.parent / "item2attributes.json"
    return [seq_file] + ([attr_file] if attr_file.exists() else [])


# --------------------------------------------------------------------------- comirec / seater
def _split_items(field: str, path: Path, lineno: int, what: str) -> list[int]:
    # an item lost between two commas; a leading or trailing comma is tolerated (a writer's join artefact)
    if ",," in field.replace(" ", "").replace("\t", ""):
        raise DataError(f"{path}:{lineno}: empty entry between commas in {what}: {field.strip()!r}")
    return _int_tokens(field.replace(",", " "), path, lineno, what)


def _read_comirec_file(path: Path, users: list[int], seqs: list[list[int]], where: dict[int, str]) -> None:
    lines = _read_lines(path)
    first = next(line for line in lines if line.strip())
    if "\t" in first:  # SEATER rows: user \t history \t targets
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 3:
                raise DataError(f"{path}:{lineno}: expected 'user<TAB>history<TAB>targets', got {len(parts)} tab-separated fields")
            user = _int_tokens(parts[0], path, lineno, "user id")
            if len(user) != 1:
                raise DataError(f"{path}:{lineno}: expected one user id, got {parts[0]!r}")
            items = _split_items(parts[1], path, lineno, "history items") + _split_items(parts[2], path, lineno, "target items")
            if not items:
                raise DataError(f"{path}:{lineno}: user {user[0]} has no items")
            if user[0] in where:
                hint = ("; if this is a tab-separated user / item / timestamp log: ComiRec logs are comma-separated"
                        if all(_INT.fullmatch(f.strip()) for f in parts) else "")
                raise DataError(f"{path}:{lineno}: user {user[0]} already has a row ({where[user[0]]}); one row per user is accepted{hint}")
            where[user[0]] = f"{path.name}:{lineno}"
            users.append(user[0])
            seqs.append(items)
        return
    _read_comirec_log(path, lines, users, seqs, where)


def _log_fields(text: str, path: Path, lineno: int) -> list[int]:
    """The 2 or 3 integers of one ``user,item[,timestamp]`` line; any other line is reported."""
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise DataError(f"{path}:{lineno}: expected 'user,item[,timestamp]', got {text!r}")
    values = [_int_tokens(p, path, lineno, "user, item and timestamp") for p in parts]
    if any(len(v) != 1 for v in values):
        raise DataError(f"{path}:{lineno}: expected 'user,item[,timestamp]', got {text!r}")
    return [v[0] for v in values]


def _read_comirec_log(path: Path, lines: list[str], users: list[int], seqs: list[list[int]], where: dict[int, str]) -> None:
    """ComiRec interaction log ``user,item[,timestamp]``, parsed in bulk: one regex check per line and
    one integer conversion for the file (a line that fails the check is re-parsed alone, so the first
    bad line in the file is the one named). Users come out in increasing id order, each one's items by
    timestamp (stable)."""
    rows, linenos = [], []
    commas = None  # the first line decides: every line has a timestamp, or none has
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if not _LOG.fullmatch(text):
            _log_fields(text, path, lineno)  # raises, or accepts an unusual spacing or a long id
        if commas is None:
            commas = text.count(",")
        elif text.count(",") != commas:
            timed = commas == 2
            raise DataError(f"{path}:{lineno}: {'no timestamp' if timed else 'a timestamp'} on this line, while the "
                            f"first line {'has one' if timed else 'has none'}; give every line a timestamp or none")
        rows.append(text)
        linenos.append(lineno)
    tokens = " ".join(rows).replace(",", " ").split()  # every field one integer in 0..2^63-1 (checked above)
    values = np.fromiter(map(int, tokens), dtype=np.int64, count=len(tokens)).reshape(len(rows), -1)
    u = values[:, 0]
    order = np.lexsort((values[:, 2], u) if values.shape[1] == 3 else (u,))  # by user, then time; stable on ties
    su, si = u[order], values[order, 1]
    cut = np.flatnonzero(np.diff(su)) + 1
    heads = np.minimum.reduceat(order, np.r_[0, cut])  # each user's first line in the file
    for user, items, row in zip(su[np.r_[0, cut]].tolist(), np.split(si, cut), heads.tolist()):
        if user in where:
            raise DataError(f"{path}:{linenos[row]}: user {user} also appears in {where[user]}; users must not span files")
        where[user] = path.name
        users.append(user)
        seqs.append(items.tolist())


def load_comirec(path: str | Path) -> Interactions:
    """ComiRec interaction logs or SEATER ``.tsv`` rows (see the module docstring): a file or a directory."""
    path = Path(path)
    files = _comirec_files(path)
    users: list[int] = []
    seqs: list[list[int]] = []
    where: dict[int, str] = {}
    for f in files:
        _read_comirec_file(f, users, seqs, where)
    flat, lengths = _from_lists(seqs)
    return _build(np.asarray(users, dtype=np.int64), flat, lengths, _dataset_name(path), source=str(path))


# files ComiRec's preprocessing writes beside the data: id maps (``orig,new`` lines, which would read
# as interactions) and item categories
_COMIREC_SIDE_FILES = ("_user_map", "_item_map", "_cate_map", "_item_cate")


def _comirec_files(path: Path) -> list[Path]:
    """A file itself; in a directory its ``*_train/_valid/_test`` files when it has any, else every
    ``.tsv/.txt/.csv`` file but ComiRec's id-map and category files."""
    if not path.exists():
        raise DataError(f"{path}: path not found")
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in (".tsv", ".txt", ".csv") and p.is_file())
    split_files = [p for p in files if p.stem.endswith(("_train", "_valid", "_test"))]
    files = split_files or [p for p in files if not p.stem.endswith(_COMIREC_SIDE_FILES)]
    if not files:
        raise DataError(f"{path}: no .tsv, .txt or .csv data files in this directory")
    return files


# --------------------------------------------------------------------------- lightgcn
def load_lightgcn(path: str | Path) -> Interactions:
    """LightGCN data: a directory with ``train.txt`` [+ ``test.txt``]; sequence = train items then test items."""
    path = Path(path)
    by_user: dict[int, list[int]] = {}
    for f in _lightgcn_files(path):
        linenos, users, flat, lengths = _user_item_lines(f, allow_empty=True)
        _check_unique_users(f, linenos, users)
        ends = np.cumsum(lengths).tolist()
        for user, a, b in zip(users.tolist(), [0] + ends[:-1], ends):
            by_user.setdefault(user, []).extend(flat[a:b].tolist())
    keep = [u for u, items in by_user.items() if items]
    flat, lengths = _from_lists([by_user[u] for u in keep])
    return _build(np.asarray(keep, dtype=np.int64), flat, lengths, _dataset_name(path), source=str(path))


def _lightgcn_files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"{path}: path not found")
    if not path.is_dir():
        raise DataError(f"{path}: expected a directory holding train.txt and test.txt")
    train_file, test_file = path / "train.txt", path / "test.txt"
    if not train_file.exists():
        raise DataError(f"{train_file}: file not found")
    return [train_file] + ([test_file] if test_file.exists() else [])


# --------------------------------------------------------------------------- yambda
def _yambda_file(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: path not found")
    if path.is_dir() and path.suffix == ".parquet":
        raise DataError(f"{path}: is a directory (a partitioned parquet dataset?); pass one parquet file")
    if path.is_dir():
        if (path / "likes.parquet").exists():
            return _yambda_file(path / "likes.parquet")
        found = sorted(p.name for p in path.glob("*.parquet"))
        raise DataError(f"{path}: no likes.parquet here; pass one of the parquet files itself"
                        + (f" ({', '.join(found)})" if found else " (this directory has none)"))
    return path


def _read_parquet(file: Path, columns: list[str]):
    """`pq.read_table`, with a damaged or odd file reported as one `DataError` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(file, columns=columns)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{file}: not a readable parquet file ({e})") from None


def _is_list(col) -> bool:
    import pyarrow as pa

    return pa.types.is_list(col.type) or pa.types.is_large_list(col.type)


def _first_null_row(col) -> int:
    return int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])


def _yambda_lengths(table, name: str, path: Path) -> np.ndarray:
    """Per-row list lengths of column `name` (sequential layout); a missing list is reported."""
    import pyarrow.compute as pc

    col = table.column(name)
    if not _is_list(col):
        raise DataError(f"{path}: column {name!r} is {col.type}, expected a list like 'item_id' (sequential layout)")
    if col.null_count:
        raise DataError(f"{path}: column {name!r} has a missing list at row index {_first_null_row(col)}")
    return pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)


def _yambda_column(table, name: str, path: Path, lengths: np.ndarray | None, allow_null: bool = False) -> np.ndarray:
    """Column `name` as numpy. Sequential layout (`lengths` = item_id's list lengths): the lists
    must match item_id's row by row, and are flattened."""
    import pyarrow.compute as pc

    col = table.column(name)
    if lengths is not None:
        own = _yambda_lengths(table, name, path)
        bad = np.flatnonzero(own != lengths)
        if bad.size:
            row = int(bad[0])
            raise DataError(f"{path}: row index {row}: column {name!r} has a list of length {own[row]}, 'item_id' one of {lengths[row]}")
        col = pc.list_flatten(col)
    if col.null_count and not allow_null:
        row = _first_null_row(col)
        if lengths is not None:  # position in the flattened lists -> user row
            row = int(np.searchsorted(np.cumsum(lengths), row, side="right"))
        raise DataError(f"{path}: column {name!r} has {col.null_count} missing values (first at row index {row})")
    return col.to_numpy(zero_copy_only=False)


def load_yambda(path: str | Path) -> Interactions:
    """Yambda events (see the module docstring): a parquet file, or a directory with likes.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = _yambda_file(Path(path))
    try:
        schema = pq.read_schema(file)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{file}: not a readable parquet file ({e})") from None
    missing = [c for c in ("uid", "item_id", "timestamp") if c not in schema.names]
    if missing:
        raise DataError(f"{file}: missing column(s) {', '.join(missing)}; Yambda files have uid, timestamp, item_id")
    extra = [c for c in ("played_ratio_pct", "event_type") if c in schema.names]
    twice = sorted({c for c in ("uid", "item_id", "timestamp", *extra) if schema.names.count(c) > 1})
    if twice:
        raise DataError(f"{file}: column(s) {', '.join(twice)} appear more than once")
    table = _read_parquet(file, ["uid", "item_id", "timestamp", *extra])
    # sequential layout: one row per user, every other column a list as long as item_id's
    lengths = _yambda_lengths(table, "item_id", file) if _is_list(table.column("item_id")) else None
    uid = _yambda_column(table, "uid", file, None)  # one per row, in both layouts
    if lengths is not None:
        uid = np.repeat(uid, lengths)
    item = _yambda_column(table, "item_id", file, lengths)
    ts = _yambda_column(table, "timestamp", file, lengths)
    for name, values in (("uid", uid), ("item_id", item), ("timestamp", ts)):
        if not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"{file}: column {name!r} holds {values.dtype}, expected integers")
        if values.size and values.min() < 0:
            raise DataError(f"{file}: column {name!r} has a negative value ({values.min()})")
        if values.size and values.max() > MAX_ID:  # uint64
            raise DataError(f"{file}: column {name!r} has a value too large ({values.max()}, max 2^63-1)")
    keep = np.ones(len(item), dtype=bool)
    if "event_type" in extra:
        events = _yambda_column(table, "event_type", file, lengths)
        if events.dtype.kind not in "OUS":
            raise DataError(f"{file}: column 'event_type' holds {events.dtype}, expected strings (listen, like, ...)")
        events = events.astype(str)
        keep &= np.isin(events, ("listen", "like"))
        is_listen = events == "listen"
    else:
        is_listen = np.full(len(item), file.stem.startswith("listens"))
    if "played_ratio_pct" in extra:
        ratio = _yambda_column(table, "played_ratio_pct", file, lengths, allow_null=True)  # nulls: non-listen rows
        if ratio.dtype.kind not in "iuf" and any(r is not None for r in ratio):  # an all-null column reads as object
            raise DataError(f"{file}: column 'played_ratio_pct' holds {table.column('played_ratio_pct').type}, expected numbers")
        keep &= ~is_listen | (ratio.astype(np.float64) >= YAMBDA_MIN_PLAYED)  # nan (null) -> not kept
    uid, item, ts = uid[keep].astype(np.int64), item[keep].astype(np.int64), ts[keep].astype(np.int64)
    order = np.lexsort((np.arange(len(uid)), ts, uid))  # by user, then time, then file order
    uid, item = uid[order], item[order]
    users, counts = np.unique(uid, return_counts=True)
    return _build(users, item, counts, _dataset_name(Path(path)), source=str(file))


# --------------------------------------------------------------------------- dispatch
def detect_format(path: str | Path) -> str:
    """Guess the format of `path` from file names (and the first line of a lone file)."""
    path = Path(path)
    found = format_from_names(path)
    if found is not None:
        return found
    first = _first_line(path)
    return "comirec" if ("\t" in first or "," in first) else "s3rec"


def format_from_names(path: str | Path) -> str | None:
    """The format that file names tell (a folder's files; a file's name or suffix), or None for a
    lone file whose name says nothing (then only its first line hints at one)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: path not found")
    if path.is_dir():
        if (path / "sequences.txt").is_file():
            return "s3rec"
        if (path / "train.txt").is_file():
            return "lightgcn"
        if any(p.suffix in (".tsv", ".csv") or p.stem.endswith(("_train", "_valid", "_test")) for p in path.iterdir()):
            return "comirec"
        if (path / "likes.parquet").is_file():
            return "yambda"
        raise DataError(f"{path}: cannot tell the format (no sequences.txt, train.txt, .tsv/.csv or likes.parquet files); pass --format")
    if path.name == "sequences.txt":
        return "s3rec"
    if path.suffix == ".parquet":
        return "yambda"
    if path.suffix in (".tsv", ".csv"):
        return "comirec"
    return None


def _first_line(path: Path, limit: int = 1 << 16) -> str:
    """The first non-blank line of a text file, reading no more than its head."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line
            if fh.tell() > limit:
                break
    return ""


def _known_format(path: str | Path, format: str) -> str:
    """`format`, ``auto`` detected from the files; an unknown name is one error."""
    if format == "auto":
        return detect_format(path)
    if format not in FORMATS:
        raise ConfigError(f"unknown dataset format {format!r}; known: auto, {', '.join(FORMATS)}")
    return format


def dataset_files(path: str | Path, format: str = "auto") -> list[Path]:
    """The files `load_dataset(path, format)` reads, so their contents can be fingerprinted."""
    files = {"s3rec": _s3rec_files, "comirec": _comirec_files, "lightgcn": _lightgcn_files,
             "yambda": lambda p: [_yambda_file(p)]}
    return files[_known_format(path, format)](Path(path))


def load_dataset(path: str | Path, format: str = "auto") -> Interactions:
    """Load `path` in `format` (``auto``, ``s3rec``, ``comirec``, ``lightgcn`` or ``yambda``)."""
    loaders = {"s3rec": load_s3rec, "comirec": load_comirec, "lightgcn": load_lightgcn, "yambda": load_yambda}
    return loaders[_known_format(path, format)](path)


def item_attribute_matrix(inter: Interactions) -> np.ndarray:
    """Multi-hot float32 ``(n_items, n_attributes)``; row i is item i+1, column j is attribute j+1.

    The input of content-based semantic IDs (TIGER's RQ-VAE) when no text embeddings exist.
    """
    if inter.item_attributes is None:
        raise DataError(f"{inter.name}: the dataset has no item attributes")
    attrs = inter.item_attributes[1:]
    lengths = np.fromiter((len(a) for a in attrs), dtype=np.int64, count=len(attrs))
    flat = np.concatenate([np.asarray(a, dtype=np.int64) for a in attrs]) if len(attrs) else np.zeros(0, np.int64)
    n_attr = int(flat.max(initial=0))
    out = np.zeros((inter.n_items, n_attr), dtype=np.float32)
    if flat.size:
        out[np.repeat(np.arange(len(attrs)), lengths), flat - 1] = 1.0
    return out


# --------------------------------------------------------------------------- writer
def write_s3rec(inter: Interactions, out_dir: str | Path) -> Path:
    """Write `inter` as S3-Rec text: ``sequences.txt`` (``user item item ...`` per line, original
    ids) and, when items have attributes, ``item2attributes.json`` (``{"item": [attr, ...]}``).

    Returns the directory. Reading it back with `load_s3rec` gives the same sequences in original ids
    (internal ids change when some item never occurs: loading numbers the items that do 1..n).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    item_ids = np.asarray(inter.item_ids)
    with open(out / "sequences.txt", "w") as fh:
        for uid, seq in zip(inter.user_ids.tolist(), inter.sequences):
            fh.write(f"{uid} {' '.join(map(str, item_ids[seq].tolist()))}\n")
    if inter.item_attributes is not None:
        attrs = {str(item_ids[i]): np.asarray(a).tolist() for i, a in enumerate(inter.item_attributes) if i > 0 and len(a)}
        with open(out / "item2attributes.json", "w") as fh:
            json.dump(attrs, fh)
    return out
