"""Experiments that reproduce results of the papers in docs/ (toy: fejgin2020 §2.2, Table 1)."""
