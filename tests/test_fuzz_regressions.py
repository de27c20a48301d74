"""Inputs that the decode fuzzer (scripts/fuzz_decode.py) found to crash ``info`` or the
decoders: each must now give a :class:`~neurocodec.errors.UserError` (one line, exit 2 in the
CLI), never another exception.  Files are ``tests/fuzz_cases/<family>-<what>.ncdc``, stored
as decoded (checksums already fixed where the fuzzer fixed them).

* ``opus-zero-samples``: a header with 0 samples made ``info`` divide by a zero duration
  (ZeroDivisionError; every baseline family hit it within seconds);
* ``pcm-huge-sample-rate``: a header at 4,294,945,860 Hz made the decoder resample to that rate
  (libFuzzer out-of-memory at 3 GB); rebuilt from the fuzzer's report with the container's own
  ``pack`` (the artifact itself was not kept);
* the fuzzer's MemoryError of the mp3, lc3 and aac decoders (a header claiming 2.8e14 samples:
  the output was allocated before the payload was checked) is
  ``test_a_header_claiming_hours_is_rejected_before_allocating`` below, for every codec."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurocodec import api
from neurocodec.errors import UserError

CASES = sorted((Path(__file__).resolve().parent / "fuzz_cases").glob("*.ncdc"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fuzz_case_is_a_user_error(path):
    data = path.read_bytes()
    with pytest.raises(UserError) as exc:
        api.info(data)
        api.decompress(data)
    assert "\n" not in str(exc.value)


def test_cli_reports_fuzz_cases_in_one_line(tmp_path, capsys):
    from neurocodec.cli import main

    for path in CASES:
        out = tmp_path / "out.wav"
        assert main(["decode", str(path), str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("neurocodec: error: ") and err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("codec_id", ["mdct", "pcm", "cq", "cmrl", "opus", "amrwb", "codec2", "speex", "mp3",
                                      "lc3", "aac"])
def test_a_header_claiming_hours_is_rejected_before_allocating(codec_id):
    """A valid stream whose header claims 10^11 samples (consistent at both rates, checksums
    right): every decoder must see that its payload cannot hold them before allocating the
    output (it used to be a MemoryError for every baseline)."""
    import dataclasses

    import numpy as np

    import neurocodec
    from neurocodec.bitstream import pack, unpack
    from neurocodec.errors import CorruptStreamError, MissingToolError

    try:
        codec = neurocodec.load(codec_id)
    except MissingToolError as exc:
        pytest.skip(str(exc))
    x = (0.1 * np.random.default_rng(0).standard_normal((1, 8000))).astype(np.float32)
    s = unpack(codec.compress(x, 16000))
    n = 10**11
    h = dataclasses.replace(s.header, num_samples=n, codec_num_samples=n * s.header.codec_sample_rate // 16000)
    with pytest.raises(CorruptStreamError):
        api.decompress(pack(h, s.chunks))
