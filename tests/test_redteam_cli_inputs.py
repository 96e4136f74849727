"""What ``memberscope attack`` and ``recon`` read: id, member and label columns of every table, and bad input.

A new-user trial found the id column honoured only in ``--records`` (a public table with one failed as "not
numeric"), class names refused as labels even with ``--classes``, a NaN error naming no column or row, and a
single-class public table ending in a scikit-learn traceback. Every case here fails before any query: the target
URL is a closed port, so reading the tables through to the first request exits 3 (the target error), and bad input
exits 2 naming what is wrong.
"""

import numpy as np
import pandas as pd
from cli_helpers import run_cli
from redteam_server import closed_port_url

COLUMNS = ["glucose", "mass", "age"]


def _table(n: int, seed: int, *, pid: bool = True, member: bool = False, labels=(0, 1)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=COLUMNS)
    if pid:
        frame.insert(0, "pid", [f"P{seed}{i:04d}" for i in range(n)])
    if member:
        frame["member"] = np.arange(n) % 2
    frame["label"] = [labels[i % len(labels)] for i in range(n)]
    return frame


def _attack(tmp_path, capsys, records: pd.DataFrame, public: pd.DataFrame, *extra):
    records.to_csv(tmp_path / "people.csv", index=False)
    public.to_csv(tmp_path / "public.csv", index=False)
    return run_cli(
        "attack", "--target", closed_port_url(), "--records", str(tmp_path / "people.csv"), "--shadow-data",
        str(tmp_path / "public.csv"), "--out", str(tmp_path / "out"), "--timeout", "2", "--max-retries", "0",
        "--no-cache", "--no-report", *extra, capsys=capsys,
    )  # fmt: skip


def _text(out: str, err: str) -> str:
    return " ".join((out + err).split())


def test_the_id_and_member_columns_are_left_out_of_every_table(tmp_path, capsys):
    # The trial's public.csv had the same `pid` column as people.csv: "not numeric: ['pid']".
    code, out, err = _attack(
        tmp_path, capsys, _table(40, 1, member=True), _table(400, 2), "--id-column", "pid", "--member-column", "member"
    )
    assert code == 3, _text(out, err)  # the tables were read; the closed port is the first thing to fail


def test_tables_with_other_columns_are_refused_naming_them(tmp_path, capsys):
    public = _table(400, 2, pid=False).assign(bmi=1.0).drop(columns="age")
    code, out, err = _attack(tmp_path, capsys, _table(40, 1), public, "--id-column", "pid")
    text = _text(out, err)
    assert code == 2 and "extra columns ['bmi']" in text and "the records' columns ['age'] are not in it" in text


def test_columns_in_another_order_are_read_by_name(tmp_path, capsys):
    from memberscope.redteam.pipeline import read_records

    public = _table(10, 2, pid=False)
    public[[*COLUMNS[::-1], "label"]].to_csv(tmp_path / "public.csv", index=False)
    X, _, _, _ = read_records(tmp_path / "public.csv", feature_columns=COLUMNS)
    np.testing.assert_array_equal(X, public[COLUMNS].to_numpy())


def test_class_names_map_to_indices_through_classes(tmp_path, capsys):
    from memberscope.redteam.pipeline import read_records

    records = _table(40, 1, labels=("neg", "pos"))
    records.to_csv(tmp_path / "people.csv", index=False)
    _, y, _, ids = read_records(tmp_path / "people.csv", id_column="pid", classes=["neg", "pos"])
    assert list(y[:4]) == [0, 1, 0, 1] and ids[0] == "P10000"
    code, out, err = _attack(
        tmp_path, capsys, records, _table(400, 2, labels=("neg", "pos")), "--id-column", "pid", "--classes", "neg,pos"
    )
    assert code == 3, _text(out, err)
    code, out, err = _attack(
        tmp_path, capsys, _table(40, 1, labels=("neg", "pos", "maybe")), _table(400, 2), "--id-column", "pid",
        "--classes", "neg,pos",
    )  # fmt: skip
    text = _text(out, err)
    assert code == 2 and "['maybe'] not among --classes ['neg', 'pos']" in text
    code, out, err = _attack(tmp_path, capsys, records, _table(400, 2), "--id-column", "pid")
    assert code == 2 and "--classes" in _text(out, err) and "'neg'" in _text(out, err)


def test_missing_feature_values_are_named_by_column_and_record(tmp_path, capsys):
    records = _table(40, 1)
    records.loc[[3, 17], "mass"] = np.nan
    code, out, err = _attack(tmp_path, capsys, records, _table(400, 2), "--id-column", "pid")
    text = _text(out, err)
    assert code == 2 and "in columns ['mass']" in text and "['P10003', 'P10017']" in text


def test_a_single_class_public_table_is_refused_naming_the_counts(tmp_path, capsys):
    code, out, err = _attack(tmp_path, capsys, _table(40, 1), _table(400, 2, labels=(0,)), "--id-column", "pid")
    text = _text(out, err)
    assert code == 2 and "single class (class 0: 400 records)" in text and "Traceback" not in text


def test_recon_reads_records_with_id_and_member_columns(tmp_path, capsys):
    _table(20, 1, member=True).to_csv(tmp_path / "people.csv", index=False)
    code, out, err = run_cli(
        "recon", closed_port_url(), "--records", str(tmp_path / "people.csv"), "--id-column", "pid",
        "--member-column", "member", "--timeout", "2", "--max-retries", "0", capsys=capsys,
    )  # fmt: skip
    assert code == 3, _text(out, err)


def test_ground_truth_columns_never_reach_the_features(tmp_path):
    from memberscope.redteam.pipeline import read_records

    _table(10, 1, member=True).to_csv(tmp_path / "people.csv", index=False)
    X, _, member, _ = read_records(tmp_path / "people.csv", id_column="pid", member_column="member")
    assert X.shape == (10, len(COLUMNS)) and member is not None


def test_the_not_member_rate_is_checked(tmp_path, capsys):
    code, out, err = _attack(tmp_path, capsys, _table(40, 1), _table(400, 2), "--id-column", "pid", "--fnr", "1.5")
    assert code == 2 and "--fnr must be in (0, 1); got 1.5" in _text(out, err)


def test_a_wrong_member_column_lists_every_column(tmp_path, capsys):
    # The second trial: the list stopped at 12 columns, hiding 'label' and 'member' at the end of a wide table.
    records = _table(40, 1, member=True)
    for i in range(20):
        records.insert(1, f"x{i}", 0.0)
    code, out, err = _attack(tmp_path, capsys, records, _table(400, 2), "--member-column", "is_member")
    text = _text(out, err)
    assert code == 2 and "no member column 'is_member'" in text and "'label'" in text and "'member'" in text


def test_text_in_a_numeric_column_is_named_with_its_value_and_record(tmp_path, capsys):
    records = _table(40, 1)
    records["mass"] = records["mass"].astype(object)
    records.loc[5, "mass"] = "high"
    code, out, err = _attack(tmp_path, capsys, records, _table(400, 2), "--id-column", "pid")
    text = _text(out, err)
    assert code == 2 and "'mass'" in text and "'high'" in text and "P10005" in text and "Traceback" not in text
