"""The bundled data sets must stay byte-identical to their published copies."""

import hashlib

import pytest

from tests.conftest import DATA, TELCO

EXPECTED = {
    TELCO: "0f9de68e012bd3aed5fa7cdc9fc421af",
    DATA / "BankChurners.csv": "7d430bfa2a1e7214778a70edde4fb586",
    DATA / "Churn_Modelling.csv": "496aee8fbfdfa1dfb6daa9dbca5d1a01",
    DATA / "churn-bigml-80.csv": "72e233973315fa314f990737f7d44bc2",
    DATA / "churn-bigml-20.csv": "47cdd0fb9206ab7c77925605cdd4ae73",
}


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda p: p.name)
def test_dataset_is_byte_identical(path):
    assert hashlib.md5(path.read_bytes()).hexdigest() == EXPECTED[path]
