import numpy as np
import pytest
import torch

from neurocodec.api import Codec, decompress
from neurocodec.codecs.cq import CqCodec
from neurocodec.codecs.pretrained import cq_family
from neurocodec.errors import BitrateError, WeightsError


@pytest.fixture
def weights_dir(tmp_path):
    torch.manual_seed(0)
    model = CqCodec.for_bitrate(16)
    path = tmp_path / "cq-16k" / "model.safetensors"
    path.parent.mkdir()
    model.save_pretrained(path)
    return tmp_path


def test_missing_weights_are_a_user_error(tmp_path):
    fam = cq_family(tmp_path)
    assert not fam.has_trained_weights()
    assert fam.num_parameters() > 400_000  # from the untrained architecture
    with pytest.raises(WeightsError, match="neurocodec train cq --bitrate 16"):
        fam.compress(np.zeros((1, 1600), np.float32), 16)
    with pytest.raises(BitrateError):
        fam.compress(np.zeros((1, 1600), np.float32), 15)


def test_round_trip_with_checkpoint_of_one_operating_point(weights_dir):
    torch.set_num_threads(1)
    fam = cq_family(weights_dir)
    codec = Codec(fam)
    t = np.arange(8000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    data = codec.compress(x, 16000, bitrate=16)
    y, sr = codec.decompress(data)
    assert sr == 16000 and y.shape == (1, 8000) and np.all(np.isfinite(y))
    # the header carries the checkpoint's own hash: other weights refuse the stream
    other = weights_dir / "other"
    (other / "cq-16k").mkdir(parents=True)
    torch.manual_seed(1)
    CqCodec.for_bitrate(16).save_pretrained(other / "cq-16k" / "model.safetensors")
    with pytest.raises(WeightsError):
        Codec(cq_family(other)).decompress(data)
    with pytest.raises(WeightsError):  # 24 kbps has no checkpoint here
        codec.compress(x, 16000, bitrate=24)
