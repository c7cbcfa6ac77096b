"""Loaders on small files written here: each format, id remapping, and every bad-input message."""

import json

import numpy as np
import pytest

from seater.data import Interactions, make_synthetic, write_s3rec
from seater.data.loaders import (
    detect_format,
    item_attribute_matrix,
    load_comirec,
    load_dataset,
    load_lightgcn,
    load_s3rec,
    load_yambda,
)
from seater.errors import ConfigError, DataError


def _seqs(inter: Interactions):
    """Sequences in original item ids, keyed by original user id (independent of renumbering)."""
    return {int(u): inter.item_ids[s].tolist() for u, s in zip(inter.user_ids, inter.sequences)}


def test_s3rec_remaps_non_contiguous_ids(tmp_path):
    (tmp_path / "sequences.txt").write_text("7 30 10 30\n3 20 50\n\n")
    (tmp_path / "item2attributes.json").write_text(json.dumps({"10": [5], "30": [5, 9], "99": [2]}))
    inter = load_dataset(tmp_path)
    assert inter.name == tmp_path.name
    assert inter.n_items == 4 and inter.item_ids.tolist() == [-1, 10, 20, 30, 50]
    assert [s.tolist() for s in inter.sequences] == [[3, 1, 3], [2, 4]]
    assert inter.user_ids.tolist() == [7, 3]
    assert _seqs(inter) == {7: [30, 10, 30], 3: [20, 50]}
    # attributes: 2 -> 1, 5 -> 2, 9 -> 3; item 99 never interacted, so dropped
    m = item_attribute_matrix(inter)
    assert m.dtype == np.float32
    assert m.tolist() == [[0, 1, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert load_s3rec(tmp_path / "sequences.txt").n_items == 4  # the file itself also works


def test_contiguous_ids_are_kept(tmp_path):
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 3 2\n")
    inter = load_s3rec(tmp_path)
    assert [s.tolist() for s in inter.sequences] == [[1, 2, 3], [3, 2]]


def test_write_s3rec_round_trip(tmp_path):
    inter = make_synthetic(50, 40, seed=2)
    back = load_s3rec(write_s3rec(inter, tmp_path / "syn"))
    assert back.n_users == 50 and back.n_items == inter.n_items
    assert all(np.array_equal(a, b) for a, b in zip(back.sequences, inter.sequences))
    assert all(np.array_equal(a, b) for a, b in zip(back.item_attributes[1:], inter.item_attributes[1:]))


def test_comirec_interaction_log_sorted_by_time(tmp_path):
    f = tmp_path / "book_train.txt"
    f.write_text("5,100,30\n5,200,10\n9,100,1\n5,300,20\n")
    inter = load_dataset(tmp_path)
    assert _seqs(inter) == {5: [200, 300, 100], 9: [100]}
    f2 = tmp_path / "log.csv"
    f2.write_text("1,4\n2,6\n1,5\n")  # no timestamp: file order
    assert _seqs(load_comirec(f2)) == {1: [4, 5], 2: [6]}


def test_seater_tsv_rows(tmp_path):
    f = tmp_path / "test.tsv"
    f.write_text("1\t10,11,12\t13,14\n2\t20 21\t22\n3\t\t30\n")
    inter = load_dataset(f)
    assert _seqs(inter) == {1: [10, 11, 12, 13, 14], 2: [20, 21, 22], 3: [30]}


def test_lightgcn_train_then_test(tmp_path):
    (tmp_path / "train.txt").write_text("0 5 6\n1 7\n2\n")
    (tmp_path / "test.txt").write_text("0 8\n2 5\n")
    inter = load_dataset(tmp_path)
    assert detect_format(tmp_path) == "lightgcn"
    assert _seqs(inter) == {0: [5, 6, 8], 1: [7], 2: [5]}
    assert inter.item_ids.tolist() == [-1, 5, 6, 7, 8]


@pytest.mark.parametrize(
    "content, message",
    [
        ("1 2 3\n2 4 x5\n", r"sequences.txt:2: user and item ids must be integers, got 'x5'"),
        ("1 2 3\n2 4 -5\n", r"sequences.txt:2: negative id -5"),
        ("1 2 3\n\n2 2.5\n", r"sequences.txt:3: user and item ids must be integers, got '2.5'"),
        ("1 2 3\n2\n", r"sequences.txt:2: expected 'user item item \.\.\.'"),
        ("1 2 3\n1 4\n", r"sequences.txt:2: user 1 already appeared on line 1"),
        ("\n  \n", r"sequences.txt: file is empty"),
    ],
)
def test_s3rec_bad_input(tmp_path, content, message):
    (tmp_path / "sequences.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        load_s3rec(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,2,3\n1;2;3\n", r"log.txt:2: expected 'user,item\[,timestamp\]'"),
        ("1,2,3\n1,-2,3\n", r"log.txt:2: negative id -2"),
        ("1,2,3\n1,b,3\n", r"log.txt:2: user, item and timestamp must be integers, got 'b'"),
        ("1\t2\t3\n1\t4\n", r"log.txt:2: expected 'user<TAB>history<TAB>targets', got 2"),
        ("1\t2\t3\n2\t4,y\t5\n", r"log.txt:2: history items must be integers, got 'y'"),
        ("1\t2\t3\n1\t2,3\t4\n", r"log.txt:2: user 1 already has a row \(log.txt:1\)"),
        ("1\t2\t3\n2\t\t\n", r"log.txt:2: user 2 has no items"),
    ],
)
def test_comirec_bad_input(tmp_path, content, message):
    (tmp_path / "log.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        load_comirec(tmp_path / "log.txt")


BIG = "99999999999999999999999"  # above 2^63-1: does not fit the int64 ids are stored in


@pytest.mark.parametrize(
    "name, content, line",
    [
        ("sequences.txt", f"1 1 2\n2 1 {BIG} 3\n", 2),  # s3rec, bulk parse
        ("log.csv", f"1,2,3\n1,{BIG},4\n", 2),  # comirec log, item column
        ("log.csv", f"1,2,3\n1,3,{BIG}\n", 2),  # comirec log, timestamp column
        ("rows.tsv", f"1\t2\t3\n2\t4,{BIG}\t5\n", 2),  # SEATER rows
        ("train.txt", f"0 1\n{BIG} 2\n", 2),  # lightgcn
    ],
)
def test_ids_beyond_int64(tmp_path, name, content, line):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=rf"{name}:{line}: id {BIG} too large \(max 2\^63-1\)"):
        load_dataset(tmp_path)


def test_attribute_ids_beyond_int64(tmp_path):
    (tmp_path / "sequences.txt").write_text("1 2\n")
    (tmp_path / "item2attributes.json").write_text(f'{{"2": [1, {BIG}]}}')
    with pytest.raises(DataError, match=r"key '2': expected a list of non-negative integer attribute ids \(at most 2\^63-1\)"):
        load_s3rec(tmp_path)


def test_users_spanning_comirec_files(tmp_path):
    (tmp_path / "a_train.txt").write_text("1,2,3\n")
    (tmp_path / "a_valid.txt").write_text("2,2,3\n1,3,4\n")
    with pytest.raises(DataError, match=r"a_valid.txt:2: user 1 also appears in a_train.txt"):
        load_comirec(tmp_path)


def test_spanning_users_are_reported_at_their_first_line_in_the_file(tmp_path):
    """Blank lines count (the line number was the count of non-blank lines before)."""
    (tmp_path / "a_train.csv").write_text("1,10,1\n2,11,1\n")
    (tmp_path / "b_test.csv").write_text("\n\n\n3,12,1\n\n2,13,2\n")
    with pytest.raises(DataError, match=r"b_test.csv:6: user 2 also appears in a_train.csv"):
        load_comirec(tmp_path)


def test_comirec_directory_reads_its_splits_not_the_id_maps(tmp_path):
    """ComiRec's preprocessing writes ``orig,new`` id maps beside the splits; they were read as
    interactions (users 500017, ... and an item 0 from the map; audit)."""
    (tmp_path / "taobao_train.txt").write_text("1,10,1\n1,11,2\n2,10,1\n")
    (tmp_path / "taobao_test.txt").write_text("3,12,5\n3,10,6\n")
    (tmp_path / "taobao_user_map.txt").write_text("500017,1\n700023,2\n900031,3\n")
    (tmp_path / "taobao_item_map.txt").write_text("99,10\n98,11\n97,12\n")
    expected = {1: [10, 11], 2: [10], 3: [12, 10]}
    assert _seqs(load_dataset(tmp_path)) == expected
    (tmp_path / "taobao_train.txt").rename(tmp_path / "log.csv")  # no split files: all but the maps
    (tmp_path / "taobao_test.txt").rename(tmp_path / "log2.csv")
    (tmp_path / "taobao_item_cate.txt").write_text("10,1\n")
    assert _seqs(load_comirec(tmp_path)) == expected


def test_comirec_log_in_bulk_equals_line_by_line(tmp_path):
    """The bulk parse against a plain reading of the same log, spacing variants included."""
    rng = np.random.default_rng(0)
    rows = [(int(u), int(i), int(t)) for u, i, t in zip(rng.integers(0, 50, 2000), rng.integers(0, 300, 2000), rng.integers(0, 40, 2000))]
    lines = [f"{u},{i},{t}" if n % 7 != 3 else f" {u} , {i}  ,{t} " for n, (u, i, t) in enumerate(rows)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    expected: dict[int, list[tuple[int, int]]] = {}
    for u, i, t in rows:
        expected.setdefault(u, []).append((t, i))
    want = {u: [i for _, i in sorted(v, key=lambda ti: ti[0])] for u, v in expected.items()}  # sorted() is stable
    inter = load_comirec(tmp_path / "log.csv")
    assert _seqs(inter) == want
    assert inter.user_ids.tolist() == sorted(want)


def test_seater_rows_refuse_an_item_lost_between_commas(tmp_path):
    f = tmp_path / "rows.tsv"
    f.write_text("1\t2,3\t4\n2\t2, ,3\t4\n")
    with pytest.raises(DataError, match=r"rows.tsv:2: empty entry between commas in history items: '2, ,3'"):
        load_comirec(f)
    f.write_text("1\t10\t1000\n1\t11\t1001\n")  # a tab-separated log read as rows
    with pytest.raises(DataError, match=r"rows.tsv:2: user 1 already has a row .*ComiRec logs are comma-separated"):
        load_comirec(f)


def test_lightgcn_bad_input(tmp_path):
    (tmp_path / "train.txt").write_text("0 1\n")
    (tmp_path / "test.txt").write_text("0 1\n1 z\n")
    with pytest.raises(DataError, match=r"test.txt:2: user and item ids must be integers, got 'z'"):
        load_lightgcn(tmp_path)
    with pytest.raises(DataError, match="expected a directory"):
        load_lightgcn(tmp_path / "train.txt")


def test_missing_paths_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match=r"nope: path not found"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match=r"nope: path not found"):
        load_s3rec(tmp_path / "nope")
    with pytest.raises(DataError, match="sequences.txt: file not found"):
        load_s3rec(tmp_path)  # a directory without sequences.txt
    with pytest.raises(DataError, match="cannot tell the format"):
        load_dataset(tmp_path)
    (tmp_path / "sequences.txt").write_text("1 2\n")
    with pytest.raises(ConfigError, match="unknown dataset format 'csv'; known: auto, s3rec, comirec, lightgcn, yambda"):
        load_dataset(tmp_path, format="csv")


def test_bad_attribute_json(tmp_path):
    (tmp_path / "sequences.txt").write_text("1 2\n")
    (tmp_path / "item2attributes.json").write_text('{"2": [1,\n "x"]}')
    with pytest.raises(DataError, match=r"item2attributes.json: key '2': expected a list of non-negative integer"):
        load_s3rec(tmp_path)
    (tmp_path / "item2attributes.json").write_text('{"2": [1,\n ')
    with pytest.raises(DataError, match=r"item2attributes.json:2: not valid JSON"):
        load_s3rec(tmp_path)
    with pytest.raises(DataError, match="no item attributes"):
        item_attribute_matrix(load_comirec(_write(tmp_path / "x.csv", "1,2\n")))


def _write(path, text):
    path.write_text(text)
    return path


# ------------------------------------------------------------------ yambda (parquet written here)
def _parquet(path, **columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def test_yambda_flat_likes_sorted_by_time(tmp_path):
    import pyarrow as pa

    u32 = pa.uint32()
    _parquet(tmp_path / "likes.parquet",
             uid=pa.array([30, 10, 30, 30, 10], u32), timestamp=pa.array([50, 7, 5, 50, 3], u32),
             item_id=pa.array([900, 11, 700, 800, 12], u32), is_organic=pa.array([1, 0, 1, 1, 0], pa.uint8()))
    for path in (tmp_path, tmp_path / "likes.parquet"):  # the folder picks likes.parquet
        assert detect_format(path) == "yambda"
        inter = load_dataset(path)
        # by time; the tie at t=50 keeps file order (900 before 800)
        assert _seqs(inter) == {10: [12, 11], 30: [700, 900, 800]}
        assert inter.n_items == 5 and inter.item_ids[1:].tolist() == [11, 12, 700, 800, 900]


def test_yambda_listens_and_multi_event_keep_positive_events(tmp_path):
    import pyarrow as pa

    _parquet(tmp_path / "listens.parquet", uid=[1, 1, 1], timestamp=[1, 2, 3], item_id=[5, 6, 7],
             played_ratio_pct=[100, 49, 50], track_length_seconds=[200, 200, 200])
    assert _seqs(load_yambda(tmp_path / "listens.parquet")) == {1: [5, 7]}  # 49% played is not a listen
    _parquet(tmp_path / "multi_event.parquet", uid=[2, 2, 2, 2, 2], timestamp=[1, 2, 3, 4, 5], item_id=[5, 6, 7, 8, 9],
             event_type=["listen", "like", "dislike", "listen", "unlike"],
             played_ratio_pct=pa.array([80, None, None, 10, None], pa.uint16()))
    assert _seqs(load_yambda(tmp_path / "multi_event.parquet")) == {2: [5, 6]}


def test_yambda_sequential_layout(tmp_path):
    import pyarrow as pa

    _parquet(tmp_path / "likes.parquet", uid=pa.array([4, 9], pa.uint32()),
             timestamp=pa.array([[3, 1, 2], [8]], pa.list_(pa.uint32())),
             item_id=pa.array([[30, 10, 20], [10]], pa.list_(pa.uint32())))
    assert _seqs(load_yambda(tmp_path)) == {4: [10, 20, 30], 9: [10]}


def test_yambda_bad_input(tmp_path):
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"x.parquet: not a readable parquet file"):
        load_yambda(tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"no likes.parquet here; pass one of the parquet files itself \(x.parquet\)"):
        load_yambda(tmp_path)
    _parquet(tmp_path / "a.parquet", uid=[1], item=[2])
    with pytest.raises(DataError, match=r"a.parquet: missing column\(s\) item_id, timestamp"):
        load_yambda(tmp_path / "a.parquet")
    _parquet(tmp_path / "b.parquet", uid=[1, None], timestamp=[1, 2], item_id=[2, 3])
    with pytest.raises(DataError, match=r"b.parquet: column 'uid' has 1 missing values"):
        load_yambda(tmp_path / "b.parquet")
    _parquet(tmp_path / "c.parquet", uid=[1], timestamp=[1], item_id=[-2])
    with pytest.raises(DataError, match=r"c.parquet: column 'item_id' has a negative value \(-2\)"):
        load_yambda(tmp_path / "c.parquet")
    _parquet(tmp_path / "d.parquet", uid=[1], timestamp=[1], item_id=["song"])
    with pytest.raises(DataError, match=r"d.parquet: column 'item_id' holds object, expected integers"):
        load_yambda(tmp_path / "d.parquet")
    _parquet(tmp_path / "listens.parquet", uid=[1], timestamp=[1], item_id=[2], played_ratio_pct=[3])
    with pytest.raises(DataError, match="no user has any item"):
        load_yambda(tmp_path / "listens.parquet")
    with pytest.raises(DataError, match="nope: path not found"):
        load_yambda(tmp_path / "nope")


def test_yambda_malformed_columns(tmp_path):
    import pyarrow as pa

    ints = pa.list_(pa.int64())

    def seq(name, **columns):  # sequential layout: uid per row, lists in the other columns
        return _parquet(tmp_path / name, uid=[1, 2], **columns)

    _parquet(tmp_path / "listens.parquet", uid=[1, 1], timestamp=[1, 2], item_id=[5, 6], played_ratio_pct=["80", "x"])
    with pytest.raises(DataError, match=r"listens.parquet: column 'played_ratio_pct' holds string, expected numbers"):
        load_yambda(tmp_path / "listens.parquet")
    seq("a.parquet", timestamp=pa.array([[1], [2]], ints), item_id=pa.array([[5], [6, 7]], ints))
    with pytest.raises(DataError, match=r"a.parquet: row index 1: column 'timestamp' has a list of length 1, 'item_id' one of 2"):
        load_yambda(tmp_path / "a.parquet")
    seq("listens_b.parquet", timestamp=pa.array([[1], [2, 3]], ints), item_id=pa.array([[5], [6, 7]], ints),
        played_ratio_pct=pa.array([[90], [90]], ints))
    with pytest.raises(DataError, match=r"listens_b.parquet: row index 1: column 'played_ratio_pct' has a list of length 1"):
        load_yambda(tmp_path / "listens_b.parquet")
    seq("c.parquet", timestamp=pa.array([[1], [2, 3]], ints), item_id=pa.array([[5], [6, 7]], ints),
        event_type=pa.array([["like", "like"], ["like", "like"]], pa.list_(pa.string())))
    with pytest.raises(DataError, match=r"c.parquet: row index 0: column 'event_type' has a list of length 2, 'item_id' one of 1"):
        load_yambda(tmp_path / "c.parquet")
    seq("d.parquet", timestamp=pa.array([[1], None], ints), item_id=pa.array([[5], None], ints))
    with pytest.raises(DataError, match=r"d.parquet: column 'item_id' has a missing list at row index 1"):
        load_yambda(tmp_path / "d.parquet")
    seq("e.parquet", timestamp=pa.array([[1], [2, None]], ints), item_id=pa.array([[5], [6, 7]], ints))
    with pytest.raises(DataError, match=r"e.parquet: column 'timestamp' has 1 missing values \(first at row index 1\)"):
        load_yambda(tmp_path / "e.parquet")
    _parquet(tmp_path / "f.parquet", uid=[1], timestamp=[1], item_id=pa.array([2**63], pa.uint64()))
    with pytest.raises(DataError, match=r"f.parquet: column 'item_id' has a value too large \(9223372036854775808, max 2\^63-1\)"):
        load_yambda(tmp_path / "f.parquet")
    # still accepted: a played_ratio_pct column that is all null (no listen in the file)
    _parquet(tmp_path / "multi_event.parquet", uid=[1], timestamp=[1], item_id=[2], event_type=["like"],
             played_ratio_pct=pa.array([None]))
    assert _seqs(load_yambda(tmp_path / "multi_event.parquet")) == {1: [2]}


# ------------------------------------------------------------------ odd but legitimate text, and odd input
def test_byte_order_mark_and_crlf_are_read(tmp_path):
    (tmp_path / "sequences.txt").write_bytes("\ufeff1 2 3\r\n2 3 4\r\n".encode())
    (tmp_path / "item2attributes.json").write_bytes('\ufeff{"2": [7]}'.encode())
    inter = load_s3rec(tmp_path)
    assert _seqs(inter) == {1: [2, 3], 2: [3, 4]}
    assert item_attribute_matrix(inter)[0].tolist() == [1.0]
    assert load_comirec(_write(tmp_path / "log.csv", "\ufeff1,2,5\r\n1,3,4\r\n")).n_items == 2


def test_lines_end_only_at_newlines(tmp_path):
    # str.splitlines would read the form feed as a line break: two users out of one line
    (tmp_path / "sequences.txt").write_text("1 2 3\x0c2 3 4\n")
    with pytest.raises(DataError, match="sequences.txt:1: user and item ids must be integers"):
        load_s3rec(tmp_path)


def test_only_ascii_digits_are_ids(tmp_path):
    (tmp_path / "sequences.txt").write_text("1 \u0661 2\n")  # ARABIC-INDIC DIGIT ONE, which int() reads as 1
    with pytest.raises(DataError, match="sequences.txt:1: user and item ids must be integers, got '\u0661'"):
        load_s3rec(tmp_path)


def test_comirec_log_timestamps_on_every_line_or_none(tmp_path):
    with pytest.raises(DataError, match="log.csv:2: no timestamp on this line, while the first line has one"):
        load_comirec(_write(tmp_path / "log.csv", "1,10,5\n1,11\n"))
    with pytest.raises(DataError, match="log.csv:3: a timestamp on this line, while the first line has none"):
        load_comirec(_write(tmp_path / "log.csv", "1,10\n1,11\n1,12,3\n"))


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"1": [2], "01": [3]}', r"key '01': item 1 is listed twice"),
        ('{"1": {}}', r"key '1': expected a list of non-negative integer attribute ids"),
        ("[]", r"item2attributes.json:1: expected an object mapping item id"),
        ("[" * 100_000, r"nested too deeply"),
        (f'{{"{BIG}": [1]}}', rf"key '{BIG}': item ids must be integers in 0..2\^63-1"),
    ],
)
def test_attribute_json_odd_input(tmp_path, content, message):
    (tmp_path / "sequences.txt").write_text("1 2\n")
    (tmp_path / "item2attributes.json").write_text(content)
    with pytest.raises(DataError, match=message):
        load_s3rec(tmp_path)


def test_a_directory_where_a_file_belongs(tmp_path):
    (tmp_path / "sequences.txt").write_text("1 2\n")
    (tmp_path / "item2attributes.json").mkdir()  # not silently ignored
    with pytest.raises(DataError, match="item2attributes.json: is a directory, expected a file"):
        load_s3rec(tmp_path)
    lg = tmp_path / "lg"
    (lg / "test.txt").mkdir(parents=True)
    (lg / "train.txt").write_text("0 1\n")
    with pytest.raises(DataError, match="test.txt: is a directory, expected a file"):
        load_lightgcn(lg)
    (tmp_path / "y" / "likes.parquet").mkdir(parents=True)
    with pytest.raises(DataError, match="likes.parquet: is a directory"):
        load_yambda(tmp_path / "y")


def test_dataset_name_of_a_relative_file(tmp_path, monkeypatch):
    (tmp_path / "beauty").mkdir()
    _write(tmp_path / "beauty" / "log.csv", "1,2\n")
    monkeypatch.chdir(tmp_path / "beauty")
    assert load_dataset("log.csv").name == "beauty"


def test_dataset_files_are_what_the_loader_reads(tmp_path):
    from seater.data.loaders import dataset_files

    (tmp_path / "s").mkdir()
    _write(tmp_path / "s" / "sequences.txt", "1 2\n")
    assert dataset_files(tmp_path / "s") == [tmp_path / "s" / "sequences.txt"]
    _write(tmp_path / "s" / "item2attributes.json", "{}")
    assert [p.name for p in dataset_files(tmp_path / "s")] == ["sequences.txt", "item2attributes.json"]
    (tmp_path / "c").mkdir()
    for name in ("b_test.csv", "a_train.csv", "notes.md"):
        _write(tmp_path / "c" / name, "1,2\n")
    assert [p.name for p in dataset_files(tmp_path / "c", "comirec")] == ["a_train.csv", "b_test.csv"]
    (tmp_path / "l").mkdir()
    _write(tmp_path / "l" / "train.txt", "0 1\n")
    assert [p.name for p in dataset_files(tmp_path / "l")] == ["train.txt"]
    _parquet(tmp_path / "likes.parquet", uid=[1], timestamp=[1], item_id=[2])
    assert dataset_files(tmp_path / "likes.parquet") == [tmp_path / "likes.parquet"]


def test_yambda_damaged_or_ambiguous_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "likes.parquet"
    pq.write_table(pa.table({"uid": list(range(500)), "timestamp": list(range(500)), "item_id": list(range(500))}),
                   path, compression="snappy")
    raw = bytearray(path.read_bytes())
    raw[8:40] = b"\xff" * 32  # inside the first column's data pages; the footer still reads
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"likes.parquet: not a readable parquet file"):
        load_yambda(path)
    twice = pa.Table.from_arrays([pa.array([1]), pa.array([1]), pa.array([2]), pa.array([3])],
                                 names=["uid", "timestamp", "item_id", "item_id"])
    pq.write_table(twice, tmp_path / "twice.parquet")
    with pytest.raises(DataError, match=r"twice.parquet: column\(s\) item_id appear more than once"):
        load_yambda(tmp_path / "twice.parquet")
    _parquet(tmp_path / "multi_event.parquet", uid=[1], timestamp=[1], item_id=[2], event_type=[1])
    with pytest.raises(DataError, match=r"column 'event_type' holds int64, expected strings"):
        load_yambda(tmp_path / "multi_event.parquet")
