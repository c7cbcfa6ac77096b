"""Suite validation: every mistake fails on load, naming the key, before any work starts."""

from __future__ import annotations

import pytest

from bench.config import SUITES_DIR, load_suite, parse_suite, suite_record
from seater.errors import ConfigError

BASE = """
[suite]
name = "t"
seeds = [0, 1]
ks = [5, 10]

[[datasets]]
name = "synth"
source = "synthetic"
synthetic = { n_users = 50, n_items = 30 }

[embeddings]
source = "latent"

[[trees]]
builder = "split_tree"
k = [4, 8]
sweep = { reverse = [false, true] }

[[retrievers]]
name = "popular"

[[retrievers]]
name = "tree_popular"
sweep = { epochs = [1, 2] }
"""


def _load(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return load_suite(p)


def test_added_parameters_at_their_defaults_keep_the_cell_id(tmp_path):
    """A parameter registered as `added` (emb_popular's `scale`) leaves results recorded before it existed reusable."""
    from bench.config import Cell

    one = BASE.split("[[retrievers]]")[0] + '[[retrievers]]\nname = "emb_popular"\nPARAMS\n'
    ids = {p: [c.id for c in _load(tmp_path, one.replace("PARAMS", p)).cells()] for p in ("", "params = { scale = 1.0 }", "params = { scale = 2.0 }")}
    assert ids[""] == ids["params = { scale = 1.0 }"] and set(ids[""]).isdisjoint(ids["params = { scale = 2.0 }"])
    cell = _load(tmp_path, one.replace("PARAMS", "")).cells()[0]
    assert cell.retriever.params["scale"] == 1.0 and "scale" not in cell.identity()["retriever"]["params"]
    assert Cell.from_json(cell.to_json()).id == cell.id  # as a worker process reads it back


def test_added_embedding_model_parameters_at_their_defaults_keep_the_cell_id(tmp_path):
    """sasrec's `lr_schedule` came after SASRec-embedding cells existed: at its default it changes no id (nor the cache key)."""
    text = BASE.replace('source = "latent"', 'source = "sasrec"\nparams = { epochs = 1PARAMS }')
    ids = {p: [c.id for c in _load(tmp_path, text.replace("PARAMS", p)).cells() if c.tree] for p in ("", ', lr_schedule = "constant"', ', lr_schedule = "cosine"')}
    assert ids[""] == ids[', lr_schedule = "constant"'] and set(ids[""]).isdisjoint(ids[', lr_schedule = "cosine"'])
    assert "lr_schedule" not in _load(tmp_path, text.replace("PARAMS", "")).embeddings.params


def test_grid_expands_to_the_cartesian_product(tmp_path):
    s = _load(tmp_path, BASE)
    cells = s.cells()
    # per seed: popular (no tree) + tree_popular 2 epochs x (2 k x 2 reverse) trees
    assert len(cells) == 2 * (1 + 2 * 4)
    assert len({c.id for c in cells}) == len(cells)
    names = [c.name for c in cells]
    assert "synth/popular/s0" in names
    assert "synth/tree_popular(epochs=1)/split_tree:k=4,reverse=True/s1" in names
    t = next(c for c in cells if c.tree is not None)
    assert t.tree.params == {"reverse": False, "delay": 0.0} and t.retriever.params == {"epochs": 1}
    # ids are a function of the resolved parameters only: reloading gives the same ids
    assert [c.id for c in _load(tmp_path, BASE).cells()] == [c.id for c in cells]
    # and an explicit default does not change them
    explicit = BASE.replace('name = "popular"', 'name = "popular"\nparams = {}')
    assert [c.id for c in _load(tmp_path, explicit).cells()] == [c.id for c in cells]


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("seeds = [0, 1]", "seeds = [0, 1]\nseed = 3", r"unknown key 'suite\.seed'; did you mean 'seeds'"),
        ('name = "synth"', 'name = "synth"\nprotocl = "x"', r"datasets\[0\]\.protocl'; did you mean 'protocol'"),
        ("ks = [5, 10]", 'ks = "10"', r"suite\.ks must be an integer or a list"),
        ("seeds = [0, 1]", "seeds = [0, true]", r"suite\.seeds must hold integers"),
        ('builder = "split_tree"', 'builder = "splittree"', r"trees\[0\]\.builder: unknown tree builder 'splittree'; did you mean 'split_tree'\?; known: .*split_tree"),
        ('name = "popular"', 'name = "populr"', r"retrievers\[0\]\.name: unknown retriever 'populr'; did you mean 'popular'\?; known: .*popular"),
        ("sweep = { epochs = [1, 2] }", "sweep = { epochs = [1, 2], lr = [0.1] }", r"retrievers\[1\]\.sweep: unknown parameter\(s\) lr for retriever 'tree_popular'"),
        ("sweep = { epochs = [1, 2] }", "sweep = { epochs = 2 }", r"retrievers\[1\]\.sweep\.epochs must be a non-empty list"),
        ("sweep = { epochs = [1, 2] }", 'sweep = { epochs = [1, "2"] }', r"retrievers\[1\]\.sweep: parameter epochs of retriever 'tree_popular' must be an integer like its default 2, got '2'"),
        ("sweep = { reverse = [false, true] }", 'params = { reverse = "yes" }', r"trees\[0\]\.params: parameter reverse of tree builder 'split_tree' must be true or false like its default False, got 'yes'"),
        ('source = "latent"', 'source = "populr"', r"embeddings\.source: unknown retriever 'populr'"),
        ('source = "latent"', 'source = "popular"', r"embeddings\.source .*not an EmbeddingModel"),
        ("k = [4, 8]", "k = [1]", r"trees\[0\]\.k values must be >= 2"),
        ('name = "tree_popular"', 'name = "tree_popular"\ntrees = ["nope"]', r"retrievers\[1\]\.trees: no tree labelled 'nope'"),
        ("ks = [5, 10]", "ks = [5, 10]\nmetric = \"ndcg@20\"", r"suite\.metric must be recall\|hit\|ndcg @ one of ks"),
        ('source = "synthetic"', 'source = "no/such/dir"', r"datasets\[0\]\.synthetic is only allowed"),
        ('source = "synthetic"\nsynthetic = { n_users = 50, n_items = 30 }', 'source = "no/such/dir"', r"datasets\[0\]\.source dataset not found: no/such/dir"),
        # values the models and the data generator check themselves, found while the suite loads
        ("n_items = 30", "n_items = -3", r"datasets\[0\]\.synthetic: n_items must be a positive integer"),
        ("n_items = 30", "n_items = 30, bogus = 1", r"datasets\[0\]\.synthetic: unknown synthetic parameter\(s\) bogus; known: n_users"),
        ("n_users = 50", "n_userz = 50", r"datasets\[0\]\.synthetic: unknown synthetic parameter\(s\) n_userz"),
        ("ks = [5, 10]", 'ks = [5, 10]\ndevice = "cuda:x"', r"suite\.device must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
        ('name = "tree_popular"\nsweep = { epochs = [1, 2] }', 'name = "seater"\nparams = { epochs = -1 }', r"retrievers\[1\]\.params: training parameter epochs must be an integer >= 1, got -1"),
        ('name = "tree_popular"\nsweep = { epochs = [1, 2] }', 'name = "seater"\nsweep = { decode_mode = ["beam", "x"] }', r"retrievers\[1\]\.params: seater decode_mode must be beam, greedy or sample"),
        ('name = "tree_popular"\nsweep = { epochs = [1, 2] }', 'name = "seater"\nparams = { n_heads = 3 }', r"retrievers\[1\]\.params: d_model \(64\) must be divisible by n_heads \(3\)"),
        ('name = "tree_popular"\nsweep = { epochs = [1, 2] }', 'name = "seater"\nparams = { val_metric = "mrr@3" }', r"seater: val_metric must be recall@K, hit@K or ndcg@K"),
        # tree builders' own range checks, for fixed values and for each sweep point
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "greedy"\nk = [4, 8]\nparams = { workers = -2 }', r"trees\[0\]\.params: greedy workers must be an integer >= 1, got -2"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "hybrid"\nk = 8\nsweep = { threshold = [100, -1] }', r"trees\[0\]\.sweep point \{'threshold': -1\}: hybrid threshold must be an integer >= 0"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "constrained"\nk = 8\nparams = { time_limit = -5 }', r"trees\[0\]\.params: constrained time_limit must be a number of seconds > 0"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "balanced"\nk = 8\nparams = { device = "tpu" }', r"trees\[0\]\.params: device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "balanced"\nk = 8\nparams = { tol = nan }', r"trees\[0\]\.params: balanced builder parameters tol and refine_tol must be >= 0"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "kmeans"\nk = 8\nparams = { workers = 0 }', r"trees\[0\]\.params: kmeans workers must be an integer >= 1"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "random"\nk = 8\nparams = { workers = 0 }', r"trees\[0\]\.params: random workers must be an integer >= 1"),
        ('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }', 'builder = "rqvae"\nk = 8\nparams = { lr = -1.0 }', r"trees\[0\]\.params: rqvae needs finite beta >= 0, lr > 0"),
    ],
)
def test_mistakes_name_the_key(tmp_path, old, new, message):
    assert old in BASE
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, BASE.replace(old, new, 1))


def test_tree_retriever_without_trees_fails(tmp_path):
    text = BASE.split("[[trees]]")[0] + '[[retrievers]]\nname = "tree_popular"\n'
    with pytest.raises(ConfigError, match=r"retrievers\[0\] \(tree_popular\) needs a tree but the suite has no \[\[trees\]\]"):
        _load(tmp_path, text)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, "[suite\nname=1")
    (tmp_path / "bin.toml").write_bytes(b"\x00\xff\xfe")
    with pytest.raises(ConfigError, match="not a TOML file .not UTF-8 text"):
        load_suite(tmp_path / "bin.toml")
    (tmp_path / "bom.toml").write_bytes("\ufeff".encode() + BASE.encode())  # a byte-order mark, as some editors write
    assert load_suite(tmp_path / "bom.toml").name == "t"
    with pytest.raises(ConfigError, match="suite file not found: .*nope.toml"):
        load_suite(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"suite file not found: beauty_seeter \(closest bundled suites: beauty_seater, "):
        load_suite("beauty_seeter")  # a typo of a bundled name gets the names it was near, not all of them


VARIANT = """base = "s"

[suite]
seeds = [0]

[[retrievers]]
name = "tree_popular"
sweep = { epochs = [3] }
"""


def test_a_variant_states_only_what_changes_over_its_base(tmp_path):
    base = _load(tmp_path, BASE)
    (tmp_path / "v.toml").write_text(VARIANT)
    v = load_suite(tmp_path / "v.toml")
    # own name (the base's is not inherited), seeds replaced, ks kept, [[retrievers]] replaced whole
    assert (v.name, v.seeds, v.ks, v.datasets, v.trees) == ("v", (0,), base.ks, base.datasets, base.trees)
    assert [c.name for c in v.cells()] == [f"synth/tree_popular(epochs=3)/{t.short()}/s0" for t in base.trees]
    # the same cells as the variant written out in full
    full = BASE.replace('name = "t"\nseeds = [0, 1]', 'name = "v"\nseeds = [0]').split("[[retrievers]]")[0]
    full += '[[retrievers]]\nname = "tree_popular"\nsweep = { epochs = [3] }\n'
    (tmp_path / "full.toml").write_text(full)
    assert [c.id for c in v.cells()] == [c.id for c in load_suite(tmp_path / "full.toml").cells()]
    # the run folder's record loads on its own, to the same cells
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "suite.toml").write_bytes(suite_record(tmp_path / "v.toml"))
    kept = load_suite(tmp_path / "run" / "suite.toml")
    assert kept.name == "v" and [c.id for c in kept.cells()] == [c.id for c in v.cells()]
    assert suite_record(tmp_path / "s.toml") == BASE.encode()  # a suite without a base is kept as written


def test_bases_chain_and_tables_merge_key_by_key(tmp_path):
    _load(tmp_path, BASE)
    (tmp_path / "v.toml").write_text(VARIANT)
    (tmp_path / "w.toml").write_text('base = "v.toml"\n[suite]\nks = [10, 20]\n')
    (tmp_path / "b.toml").write_text(BASE.replace('source = "latent"', 'source = "sasrec"\nparams = { epochs = 1, dim = 8 }'))
    (tmp_path / "c.toml").write_text('base = "b"\n[embeddings]\nparams = { epochs = 2 }\n')
    w = load_suite(tmp_path / "w.toml")
    assert (w.name, w.seeds, w.ks, w.metric) == ("w", (0,), (10, 20), "ndcg@10")
    assert {k: load_suite(tmp_path / "c.toml").embeddings.params[k] for k in ("epochs", "dim")} == {"epochs": 2, "dim": 8}


@pytest.mark.parametrize("text, message", [
    ('base = "nope"\n', "base suite not found: .*nope.toml"),
    ('base = "../s"\n', "base must name another suite in the same folder"),
    ('base = 3\n', "base must name another suite"),
    ('[suite]\nbase = "y"\n', "base goes at the top of the file"),
    ('base = "y"\n', "base suites form a cycle: y.toml -> x.toml -> y.toml"),
])
def test_bad_bases_fail_on_load(tmp_path, text, message):
    (tmp_path / "x.toml").write_text(text)
    (tmp_path / "y.toml").write_text('base = "x"\n')
    with pytest.raises(ConfigError, match=message):
        load_suite(tmp_path / "y.toml")
    with pytest.raises(ConfigError, match=message):
        suite_record(tmp_path / "y.toml")


def test_syntax_only_parse_needs_no_registry():
    s = parse_suite({"datasets": [{"source": "synthetic"}], "retrievers": [{"name": "anything"}]}, check_names=False)
    assert [c.name for c in s.cells()] == ["synthetic/anything/s0"]


@pytest.mark.parametrize("path", sorted(SUITES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_suites_validate(path):
    from bench.registry import missing_modules

    try:
        suite = load_suite(path)
    except ConfigError as e:
        if "unknown" in str(e) and missing_modules():
            pytest.skip(f"refers to a component not in this checkout ({', '.join(missing_modules())}): {e}")
        if "dataset not found" in str(e):
            pytest.skip(f"real data absent: {e}")
        raise
    assert suite.name == path.stem and suite.cells()


def test_dataset_format_auto_is_resolved_and_a_missing_format_is_checked(tmp_path):
    files = BASE.replace('source = "synthetic"\nsynthetic = { n_users = 50, n_items = 30 }', 'source = "SRC"').replace(
        'source = "latent"', 'source = "attributes"')
    (tmp_path / "log.csv").write_text("1,2\n1,3\n")
    (tmp_path / "s3").mkdir()
    (tmp_path / "s3" / "sequences.txt").write_text("1 2 3\n")
    with_format = files.replace('source = "SRC"', 'source = "SRC"\nformat = "FMT"')
    # auto becomes the detected format, so the cell ids equal those of a suite that names it
    auto = _load(tmp_path, with_format.replace("SRC", str(tmp_path / "log.csv")).replace("FMT", "auto"))
    named = _load(tmp_path, with_format.replace("SRC", str(tmp_path / "log.csv")).replace("FMT", "comirec"))
    assert auto.datasets[0].format == "comirec"
    assert [c.id for c in auto.cells()] == [c.id for c in named.cells()]
    # left out: s3rec, and files of another format are named here, not at the cell's first line
    assert _load(tmp_path, files.replace("SRC", str(tmp_path / "s3"))).datasets[0].format == "s3rec"
    with pytest.raises(ConfigError, match=r'datasets\[0\].format not given, so s3rec, but .*log.csv looks like comirec data; set format = "comirec"'):
        _load(tmp_path, files.replace("SRC", str(tmp_path / "log.csv")))
    (tmp_path / "tabs.txt").write_text("1\t2\t3\n")  # a lone s3rec file with tabs: its name says nothing, so s3rec
    assert _load(tmp_path, files.replace("SRC", str(tmp_path / "tabs.txt"))).datasets[0].format == "s3rec"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"datasets\[0\].format auto: .*cannot tell the format"):
        _load(tmp_path, with_format.replace("SRC", str(tmp_path / "empty")).replace("FMT", "auto"))
    (tmp_path / "nodata").mkdir()
    (tmp_path / "nodata" / "train.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match=r"datasets\[0\].source is not s3rec data: .*nodata/sequences.txt: file not found"):
        _load(tmp_path, with_format.replace("SRC", str(tmp_path / "nodata")).replace("FMT", "s3rec"))
    with pytest.raises(ConfigError, match=r"datasets\[0\].format must be auto or one of s3rec, comirec"):
        _load(tmp_path, with_format.replace("SRC", str(tmp_path / "s3")).replace("FMT", "csv"))


@pytest.mark.parametrize("old,new,message", [
    ('name = "t"', 'name = ".."', r"suite\.name must be a non-empty name without '/' \(and not '\.' or '\.\.'\)"),
    ('name = "synth"', 'name = ""', r"datasets\[0\]\.name must be a non-empty name without '/'"),
    ('sweep = { reverse = [false, true] }', '[[trees]]\nbuilder = "random"\nlabel = "split_tree"\nk = 4',
     r"trees\[0\] and trees\[1\] both make a tree named 'split_tree:k=4'; give one of them another label \(trees\[1\]\.label\)"),
])
def test_names_that_would_collide_or_escape_their_folder(tmp_path, old, new, message):
    assert old in BASE
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, BASE.replace(old, new, 1))


def test_a_whole_float_for_an_integer_parameter_is_that_integer(tmp_path):
    """TOML reads 2e3 as a float: for an integer parameter it is 2000, the same cells as `2000`
    (it was refused by the type check, while --sizes 2e4 was taken)."""
    def cells(threshold, epochs):
        text = BASE.replace('builder = "split_tree"\nk = [4, 8]\nsweep = { reverse = [false, true] }',
                            f'builder = "hybrid"\nk = 4\nsweep = {{ threshold = [{threshold}] }}')
        text = text.replace("sweep = { epochs = [1, 2] }", f"params = {{ epochs = {epochs} }}")
        return _load(tmp_path, text).cells()

    floats, ints = cells("2e3", "2.0"), cells("2000", "2")
    assert [c.id for c in floats] == [c.id for c in ints]
    tree = next(c.tree for c in floats if c.tree)
    ret = next(c.retriever for c in floats if c.retriever.name == "tree_popular")
    assert type(tree.params["threshold"]) is int and type(ret.params["epochs"]) is int
    with pytest.raises(ConfigError, match="threshold"):
        cells("2000.5", "2")


@pytest.mark.parametrize("old,new,message", [
    ('source = "latent"', 'source = "sasrec"\nparams = { checkpoint_dir = "/tmp/ck" }', "embeddings.params.checkpoint_dir is set by the harness"),
    ('name = "popular"', 'name = "popular"\nparams = { progress = true }', "retrievers[0].params.progress is set by the harness"),
    ('source = "latent"', 'source = "emb.npz"', "'emb.npz' is read as a file only when it ends in .npy"),
])
def test_what_the_harness_sets_per_cell_and_non_npy_files_are_refused(tmp_path, old, new, message):
    """A suite's checkpoint_dir was shared by every dataset and seed: a second dataset with as many
    items resumed the first's finished training and got its embeddings. A .npz path was reported as an
    unknown retriever."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        _load(tmp_path, BASE.replace(old, new, 1))
