"""EnCodec's training step (defossez2022 §3.4): losses, discriminator updates, weight EMA."""

import dataclasses

import torch

from neurocodec.codecs.encodec import EncodecCodec, EncodecConfig

CFG = EncodecConfig(n_filters=4, dimension=8, lstm_layers=1, n_q=4, bins=16, bandwidths=(0.3, 0.6, 1.2),
                    default_kbps=0.6, pad_mode="constant", adversarial_start=1, disc_channels=4)


def test_training_step_with_and_without_the_discriminator():
    torch.manual_seed(0)
    m = EncodecCodec(CFG).train()
    x = torch.randn(2, 1, 4000) * 0.1
    out = m.training_step(x, 0)
    assert "loss/gen" not in out  # reconstruction only before adversarial_start
    out["loss"].backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if n.startswith("net.encoder"))
    disc = m._train_parts["disc"]
    before = [p.detach().clone() for p in disc.parameters()]
    updated = False
    for step in range(1, 5):  # p = 2/3 per step: some step updates the discriminator
        m.zero_grad()
        out = m.training_step(x, step)
        assert torch.isfinite(out["loss"]) and "loss/gen" in out and "loss/feat" in out
        updated |= "loss/disc" in out
        out["loss"].backward()
    assert updated
    assert any(not torch.equal(a, b) for a, b in zip(before, disc.parameters()))
    names = {n for n, _ in m.named_parameters()}
    assert not any(n.startswith("_") for n in names)  # the discriminator is not the trainer's to optimise
    assert m.phases(10)[0]["trainable"] == ("net.",)


def test_weight_ema_is_checkpointed_and_exported(tmp_path):
    torch.manual_seed(0)
    m = EncodecCodec(dataclasses.replace(CFG, adversarial_start=-1)).train()
    opt = torch.optim.Adam([p for n, p in m.named_parameters() if n.startswith("net.")], lr=1e-2)
    x = torch.randn(2, 1, 4000) * 0.1
    for step in range(3):
        opt.zero_grad()
        m.training_step(x, step)["loss"].backward()
        opt.step()
    sd = m.state_dict()
    assert any(k.startswith("ema.") for k in sd)
    m2 = EncodecCodec(dataclasses.replace(CFG, adversarial_start=-1))
    m2.load_state_dict(sd)
    k = "net.encoder.input_conv.weight_v"
    ema = m2.shipped_state()[k]
    assert torch.equal(ema, sd["ema." + k[4:]])
    assert not torch.equal(ema, m2.net.encoder.input_conv.weight_v)  # the EMA differs from the raw weights
    raw = EncodecCodec(dataclasses.replace(CFG, adversarial_start=-1, weight_ema=0.0))
    raw.load_state_dict(sd)
    assert torch.equal(raw.shipped_state()[k], raw.net.encoder.input_conv.weight_v)


def test_16k_recipe_defaults_to_16k_without_a_bitrate():
    from neurocodec.train.recipe import apply_overrides, get_recipe

    entry = get_recipe("encodec-16k")
    for kbps in (None, 4.0):  # 'neurocodec train encodec-16k' with and without --bitrate
        model = apply_overrides(entry.default_recipe(kbps), ["model.n_filters=16"]).model
        assert (model.sample_rate, model.n_q, tuple(model.bandwidths), model.n_filters) == (16000, 16, (1.0, 2.0, 4.0, 8.0), 16)
    assert get_recipe("encodec-24k").default_recipe(None).model.sample_rate == 24000
