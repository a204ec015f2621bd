"""Paper B's models start where the authors' do, and decay what the authors' Trainer decays.

Initialisation: the SSMs and hybrids as mamba-ssm's `_init_weights` (which the authors'
hybrid code reuses), the Transformer as Hugging Face GPT-NeoX. Checked per tensor against
the formulas on any machine, and against mamba-ssm's own MambaLMHeadModel where mamba-ssm
is installed (the GPU machine). Weight decay: the Hugging Face Trainer's rule, pinned
against the Trainer's own function, and the optimizer step against torch's AdamW with the
same two parameter groups.
"""
import math

import pytest
import torch
from torch import nn

from lib.models import Mamba, Mamba2, build_model, paper_b
from lib.training.loop import MemberAdamW, decayed_names

VOCAB = 40
WIDTH = 128  # large enough for per-tensor standard deviations to settle within a few percent


def _model(family: str, **kw):
    return build_model(paper_b(family, d_model=WIDTH, heads=4, depth=0.25, **kw), VOCAB, seed=0)


def _close(std: float, expected: float, rel: float = 0.08) -> bool:
    return abs(std - expected) <= rel * expected


@pytest.mark.parametrize("family", ["mamba", "mamba2", "hybridI_1m", "hybridI_2m2", "hybrid2s", "hybrid2sr_m2"])
def test_ssm_and_hybrid_init_follows_mamba_ssm(family):
    model = _model(family)
    n_blocks = len(model.layers)
    checked = 0
    for mod_name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            w = mod.weight
            if mod_name == "head":
                continue  # tied to the embedding
            default = 1 / math.sqrt(3 * w.shape[1])  # PyTorch's kaiming_uniform(a=sqrt(5))
            if mod_name.endswith("dt_proj"):
                assert _close(w.std().item(), mod.in_features ** -0.5 / math.sqrt(3), 0.25), mod_name
                dt = torch.nn.functional.softplus(mod.bias)
                assert dt.min() >= 1e-4 - 1e-9 and dt.max() <= 0.1 + 1e-6, mod_name
            elif mod_name.endswith("out_proj"):
                assert _close(w.std().item(), default / math.sqrt(n_blocks)), (mod_name, w.std().item())
            else:
                assert _close(w.std().item(), default), (mod_name, w.std().item(), default)
                if mod.bias is not None:
                    assert torch.all(mod.bias == 0), mod_name
            checked += 1
        elif isinstance(mod, Mamba):
            assert torch.equal(mod.A_log[0], torch.log(torch.arange(1, mod.d_state + 1, dtype=torch.float32)))
            assert torch.all(mod.D == 1)
        elif isinstance(mod, Mamba2):
            a = mod.A_log.exp()
            assert a.min() >= 1 and a.max() <= 16 and torch.all(mod.D == 1)
            dt = torch.nn.functional.softplus(mod.dt_bias)
            assert dt.min() >= 1e-4 - 1e-9 and dt.max() <= 0.1 + 1e-6
    assert checked > 0
    assert _close(model.embed.weight.std().item(), 0.02, 0.03)
    assert model.head.weight is model.embed.weight


@pytest.mark.parametrize("family", ["transformer", "transformer_nope"])
def test_transformer_init_follows_gpt_neox(family):
    """Hugging Face GPTNeoXPreTrainedModel: every Linear and the embedding N(0, 0.02), biases 0."""
    model = _model(family)
    assert model.cfg.init == "gpt_neox"
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.all(p == 0), name
        elif "layernorm" in name or name.startswith("norm"):
            assert torch.all(p == 1), name
        else:
            assert _close(p.std().item(), 0.02, 0.05), (name, p.std().item())


def test_transformer_init_matches_hf_gpt_neox_per_tensor():
    """Our Transformer against transformers' GPTNeoXForCausalLM of the same shape (state_dict
    names match through the GPT-NeoX layout): the same per-tensor mean and spread."""
    transformers = pytest.importorskip("transformers")
    ours = _model("transformer")
    cfg = transformers.GPTNeoXConfig(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=len(ours.layers),
                                     num_attention_heads=4, intermediate_size=4 * WIDTH, rotary_pct=0.25,
                                     hidden_act="gelu", use_parallel_residual=True, tie_word_embeddings=False)
    torch.manual_seed(0)
    ref = dict(transformers.GPTNeoXForCausalLM(cfg).named_parameters())
    head = "lm_head.weight" if "lm_head.weight" in ref else "embed_out.weight"  # transformers 5 / 4
    rename = {"embed.weight": "gpt_neox.embed_in.weight", "head.weight": head,
              "norm.weight": "gpt_neox.final_layer_norm.weight", "norm.bias": "gpt_neox.final_layer_norm.bias"}
    for name, p in ours.named_parameters():
        r = ref[rename.get(name, "gpt_neox." + name)]
        assert r.shape == p.shape, name
        assert abs(p.float().std() - r.float().std()) <= 0.08 * r.float().std() + 1e-6, name
        assert abs(p.float().mean() - r.float().mean()) <= 0.01, name


def _pooled(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each kind of tensor (its name without the layer index) pooled over the layers: a
    Mamba-2 layer at this width has 4 dt biases, too few to compare a random law by."""
    out = {}
    for name, p in params.items():
        key = ".".join(part for part in name.split(".") if not part.isdigit())
        out.setdefault(key, []).append(p.detach().float().flatten())
    return {k: torch.cat(v) for k, v in out.items()}


def init_mismatches(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> list[str]:
    """The tensor kinds whose values do not look drawn from the reference's law: mean and
    standard deviation compared within 5 standard errors (plus 5% of the spread for the
    deviation), so two seeds of one law pass and a law scaled by 1.3 does not."""
    bad = []
    for key, r in _pooled(ref).items():
        p = _pooled(ours)[key]
        n, m = p.numel(), r.numel()
        sd = r.std() if m > 1 else r.abs()
        if sd.item() == 0:  # a constant: equal
            if not torch.allclose(p, r.expand_as(p) if m == 1 else r, atol=1e-6):
                bad.append(key)
            continue
        mean_tol = 5 * sd * math.sqrt(1 / n + 1 / m)
        std_tol = 0.05 * sd + 5 * sd * math.sqrt(1 / (2 * n) + 1 / (2 * m))
        if abs(p.mean() - r.mean()) > mean_tol or abs(p.std() - sd) > std_tol:
            bad.append(f"{key}: mean {p.mean():.4g} vs {r.mean():.4g}, std {p.std():.4g} vs {sd:.4g}")
    return bad


@pytest.mark.parametrize("family", ["mamba", "mamba2", "hybridI_1m2"])
def test_the_init_comparison_passes_two_seeds_and_fails_a_rescaled_law(family):
    """The comparator of the mamba-ssm test, on any machine: two seeds of our own model
    are one law; the same model with its output projections 1.3x larger is not."""
    a = dict(_model(family).named_parameters())
    b_model = build_model(paper_b(family, d_model=WIDTH, heads=4, depth=0.25), VOCAB, seed=1)
    b = dict(b_model.named_parameters())
    assert init_mismatches(b, a) == []
    with torch.no_grad():
        for name, p in b.items():
            if name.endswith("out_proj.weight"):
                p.mul_(1.3)
    bad = init_mismatches(b, a)
    assert bad and all("out_proj.weight" in x for x in bad), bad


@pytest.mark.parametrize("layer", ["Mamba1", "Mamba2"])
def test_ssm_init_matches_mamba_ssm_per_tensor(layer):
    """Where mamba-ssm is installed: our Mamba / Mamba2 stack against its MambaLMHeadModel
    built with the same settings, each kind of tensor pooled over the layers."""
    pytest.importorskip("mamba_ssm")
    try:
        from mamba_ssm.models.config_mamba import MambaConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    except Exception as e:  # noqa: BLE001 - a build without its kernels
        pytest.skip(f"mamba-ssm unusable here: {e}")
    family = "mamba" if layer == "Mamba1" else "mamba2"
    ours = _model(family)
    cfg = MambaConfig(d_model=WIDTH, n_layer=len(ours.layers), d_intermediate=0, vocab_size=VOCAB,
                      ssm_cfg={"layer": layer, "d_state": 16}, rms_norm=True, residual_in_fp32=True,
                      fused_add_norm=False, pad_vocab_size_multiple=8, tie_embeddings=True)
    torch.manual_seed(0)
    ref = dict(MambaLMHeadModel(cfg).named_parameters())
    rename = {"embed.weight": "backbone.embedding.weight", "norm.weight": "backbone.norm_f.weight"}
    mine = {}
    for name, p in ours.named_parameters():
        r = ref[rename.get(name, "backbone." + name)]
        assert r.shape == p.shape, name
        mine[name] = p
    theirs = {name: ref[rename.get(name, "backbone." + name)] for name in mine}
    assert init_mismatches(mine, theirs) == []


@pytest.mark.parametrize("family", ["transformer", "mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s",
                                    "hybrid2sr_m2"])
def test_decayed_parameters_are_the_hf_trainers(family):
    transformers = pytest.importorskip("transformers")
    model = _model(family)
    names = [n for n, _ in model.named_parameters()]
    # the Trainer walks modules, so a tied head appears under its own name too; the
    # optimizer sees each tensor once, under named_parameters()'s name
    theirs = [n for n in transformers.Trainer.get_decay_parameter_names(None, model) if n in names]
    ours = decayed_names(model, "trainer")
    assert sorted(ours) == sorted(theirs)
    # what the rule means in our models: no bias and no norm weight decays, the rest does
    skipped = set(names) - set(ours)
    assert skipped and all("bias" in n or "norm" in n for n in skipped)
    assert all(n in ours for n in names if n.endswith(("A_log", ".D", "conv1d.weight", "embed.weight", "beta")))


def test_member_adamw_decay_mask_matches_torch_adamw_param_groups():
    """Three steps of our flat AdamW with the Trainer's decay mask equal torch's AdamW with a
    decay group and a no-decay group."""
    torch.manual_seed(0)
    model = _model("hybridI_1m2")
    named = list(model.named_parameters())
    decayed = set(decayed_names(model, "trainer"))
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])[None].clone()
    grad = torch.zeros_like(flat)
    mask = torch.cat([torch.full((p.numel(),), float(n in decayed)) for n, p in named])
    opt = MemberAdamW(flat, grad, weight_decay=0.1, decay_mask=mask)
    ref = torch.optim.AdamW([{"params": [p for n, p in named if n in decayed], "weight_decay": 0.1},
                             {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}], lr=1e-2)
    for _ in range(3):
        g = torch.randn_like(flat)
        grad.copy_(g)
        opt.step(torch.tensor([1e-2]))
        offset = 0
        for _, p in named:
            p.grad = g[0, offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        ref.step()
    expected = torch.cat([p.detach().reshape(-1) for _, p in named])
    torch.testing.assert_close(flat[0], expected, rtol=1e-5, atol=1e-6)
