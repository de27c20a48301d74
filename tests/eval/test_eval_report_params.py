"""Parameter counts per operating point in the evaluation summary."""

from neurocodec.codecs.cq import CqCodec
from neurocodec.codecs.pretrained import cq_family
from neurocodec.eval.harness import ItemResult
from neurocodec.eval.report import markdown_table, summarize


def _result(codec, kbps):
    return ItemResult(codec, kbps, kbps, "a.flac", "h", 16000, 1.0, 100, kbps, 10.0, 20.0, 0, {"snr": 5.0})


def test_parameters_per_operating_point_and_per_codec():
    rows = [_result("cq", 9.0), _result("cq", 24.0), _result("opus", 16.0), _result("mdct", 16.0)]
    s = summarize(rows, ["snr"], parameters={("cq", 9.0): 683, ("cq", 24.0): 931, "opus": 0, ("mdct", 16.0): 0})
    assert [(x.codec, x.bitrate, x.parameters) for x in s] == [
        ("cq", 9.0, 683), ("cq", 24.0, 931), ("mdct", 16.0, 0), ("opus", 16.0, 0)]
    table = markdown_table(s, ["snr"])
    assert "| 683 |" in table and "| 931 |" in table


def test_learned_families_count_the_model_of_each_rate(tmp_path):
    fam = cq_family(tmp_path)  # no weights there: the untrained architecture of each rate
    assert fam.num_parameters_at(9) == CqCodec.for_bitrate(9).num_parameters()
    assert fam.num_parameters_at(24) == CqCodec.for_bitrate(24).num_parameters()
    assert fam.num_parameters_at(24) > fam.num_parameters_at(16)


def test_whole_set_rate_next_to_the_mean_of_files():
    """total_kbps is total bytes over total seconds of the files that produced a stream."""
    rows = [ItemResult("cq", 16.0, 16.0, "a.flac", "h", 16000, 1.0, 2000, 16.0, 10.0, 20.0, 0),
            ItemResult("cq", 16.0, 16.0, "b.flac", "h", 16000, 3.0, 3000, 8.0, 10.0, 20.0, 0),
            ItemResult("cq", 16.0, 16.0, "c.flac", "h", 16000, 2.0, 0, 0.0, 10.0, 20.0, 0, failures={"x": "y"})]
    (s,) = summarize(rows, [])
    assert s.seconds == 4.0 and s.total_kbps == 8.0 * 5000 / 4.0 / 1000.0
    assert s.measured_kbps.mean == 8.0  # the per-file mean, every row
