"""Experiments that reproduce results of the reference papers (toy: fejgin2020 §2.2, Table 1)."""
