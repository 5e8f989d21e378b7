"""AutoEncoder, VAE and DDPM: closed forms, gradients, samplers, ONNX parity (all their graphs), errors."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits, make_moons
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests._warnings import SHORT_TRAINING
from toolkit.generative import DDPM, VAE, AutoEncoder, NoiseSchedule
from toolkit.generative._vae import gaussian_kl
from toolkit.mixture import GaussianMixture
from toolkit.onnx import export, load, validate

FAST = dict(max_epochs=3, random_state=0, device="cpu")


pytestmark = SHORT_TRAINING


@pytest.fixture(scope="module")
def moons():
    return make_moons(300, noise=0.05, random_state=0)[0]


@pytest.fixture(scope="module")
def digit_images():
    return load_digits().images[:120]  # (N, 8, 8)


# ------------------------------------------------------------------ schedule
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_closed_forms_match_direct_computation(kind):
    schedule = NoiseSchedule(kind, 100)
    product, alpha_bar = 1.0, []
    for beta in schedule.betas:
        product *= 1 - beta
        alpha_bar.append(product)
    np.testing.assert_allclose(schedule.alpha_bar, alpha_bar, rtol=1e-12)
    # q(x_(t-1) | x_t, x_0) by conditioning the joint Gaussian of (x_(t-1), x_t) given x_0.
    for t in range(1, 100):
        var_prev, var_t = 1 - schedule.alpha_bar[t - 1], 1 - schedule.alpha_bar[t]
        cov = np.sqrt(schedule.alphas[t]) * var_prev
        assert schedule.posterior_variance[t] == pytest.approx(var_prev - cov**2 / var_t, rel=1e-9)
        assert schedule.posterior_mean_coef_xt[t] == pytest.approx(cov / var_t, rel=1e-9)
        coef_x0 = np.sqrt(schedule.alpha_bar[t - 1]) - cov / var_t * np.sqrt(schedule.alpha_bar[t])
        assert schedule.posterior_mean_coef_x0[t] == pytest.approx(coef_x0, rel=1e-9, abs=1e-12)
    assert schedule.posterior_variance[0] == 0.0


def test_schedule_shapes_of_the_papers():
    linear = NoiseSchedule("linear", 1000)
    assert linear.betas[0] == pytest.approx(1e-4) and linear.betas[-1] == pytest.approx(0.02)
    cosine = NoiseSchedule("cosine", 1000)
    f = np.cos((np.arange(1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(cosine.alpha_bar[:900], (f[1:] / f[0])[:900], rtol=1e-9)
    assert NoiseSchedule("linear", 50).timesteps(10).tolist() == [49, 44, 38, 33, 27, 22, 16, 11, 5, 0]


def test_ddim_with_eta_one_is_ddpm():
    schedule = NoiseSchedule("linear", 200)
    steps = schedule.timesteps(None)
    np.testing.assert_allclose(
        schedule.update_coefficients(steps, "ddim", eta=1.0),
        schedule.update_coefficients(steps, "ddpm"),
        rtol=1e-9,
        atol=1e-12,
    )
    a, b, c = schedule.update_coefficients(steps, "ddpm").T  # Algorithm 2, step t (index t - 1 here)
    t = steps[0]
    assert a[0] == pytest.approx(1 / np.sqrt(schedule.alphas[t]))
    assert b[0] == pytest.approx(-schedule.betas[t] / np.sqrt(schedule.alphas[t] * (1 - schedule.alpha_bar[t])))
    assert c[0] == pytest.approx(np.sqrt(schedule.posterior_variance[t])) and c[-1] == 0.0


# ------------------------------------------------------------------------ VAE
def test_gaussian_kl_is_the_closed_form():
    mean, log_var = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    np.testing.assert_allclose(
        gaussian_kl(mean, log_var), torch.distributions.kl_divergence(q, p).sum(dim=1), rtol=1e-12
    )


def test_reparameterised_gradients_reach_the_encoder(moons):
    model = VAE(2, hidden=(8,), **FAST).fit(moons)
    x = torch.as_tensor(model._scale(moons[:16].astype(np.float32)))
    model.module_.train()
    loss = model._loss(model.module_(x), x)
    model.module_.zero_grad()
    loss.backward()
    encoder_grads = [p.grad for p in model.module_.autoencoder.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in encoder_grads)
    assert sum(float(g.abs().sum()) for g in encoder_grads) > 0


def test_vae_transformer_interface_and_dataframes(moons):
    frame = pd.DataFrame(moons, columns=["a", "b"])
    model = VAE(3, hidden=(16,), **FAST).fit(frame)
    assert model.get_feature_names_out().tolist() == ["z0", "z1", "z2"]
    latent = model.set_output(transform="pandas").transform(frame)
    assert list(latent.columns) == ["z0", "z1", "z2"]
    decoded = model.inverse_transform(latent.to_numpy())
    assert isinstance(decoded, pd.DataFrame) and list(decoded.columns) == ["a", "b"]
    assert list(model.sample(4, random_state=0).columns) == ["a", "b"]
    pd.testing.assert_frame_equal(model.sample(4, random_state=0), model.sample(4, random_state=0))
    terms = model.elbo(frame.iloc[:10])
    assert list(terms.columns) == ["reconstruction", "kl", "elbo"]
    np.testing.assert_allclose(terms["elbo"], terms["reconstruction"] - terms["kl"])
    assert (terms["kl"] >= 0).all()
    assert model.score(frame) == pytest.approx(model.elbo(frame)["elbo"].mean())


def test_vae_in_a_pipeline_clusters_in_latent_space(moons):
    pipeline = make_pipeline(StandardScaler(), VAE(2, hidden=(16,), **FAST), GaussianMixture(2, random_state=0)).fit(
        moons
    )
    assert set(np.unique(pipeline.predict(moons))) <= {0, 1}


def test_conv_vae_reads_images_and_returns_them(digit_images):
    model = VAE(4, architecture="conv", channels=(8, 16), likelihood="bernoulli", **FAST).fit(digit_images)
    assert model.transform(digit_images).shape == (120, 4)
    assert model.sample(3, random_state=0).shape == (3, 8, 8)
    assert model.inverse_transform(np.zeros((2, 4))).shape == (2, 8, 8)
    samples = model.sample(50, random_state=0)
    assert samples.min() >= 0 and samples.max() <= 16  # Bernoulli means mapped back to [min, max]


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: VAE(2, hidden=(16,), **FAST), "moons"),
        (lambda: VAE(3, architecture="conv", channels=(8,), likelihood="bernoulli", **FAST), "images"),
    ],
)
def test_vae_exports_encoder_and_decoder(make, data, moons, digit_images, tmp_path):
    X = moons if data == "moons" else digit_images
    model = make().fit(X)
    export(model, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"encoder.onnx", "decoder.onnx", "model.json"}
    report = validate(model, tmp_path, X)
    assert report.passed and set(report.outputs) == {"encoder.mean", "encoder.log_var", "decoder.reconstruction"}
    assert report.outputs["encoder.mean"].max_abs_error < 1e-4
    np.testing.assert_allclose(load(tmp_path, graph="encoder").transform(X[:5]), model.transform(X[:5]), atol=1e-5)
    with pytest.raises(ValueError, match="several graphs"):
        load(tmp_path)


# ---------------------------------------------------------------- AutoEncoder
@pytest.mark.parametrize("n_components", [2, 8])
def test_autoencoder_reconstructs_held_out_digits_better_than_pca(n_components):
    """With its defaults (held-out early stopping) the non-linear codes beat PCA's linear ones
    of the same size on digits the fit did not see (measured: 2 codes 643 vs PCA 885, 8 codes
    290 vs 408, squared error per image in pixel units)."""
    X_train, X_test = train_test_split(load_digits().data, test_size=0.25, random_state=0)
    pca = PCA(n_components).fit(X_train)
    pca_error = ((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).sum(axis=1).mean()
    model = AutoEncoder(n_components, random_state=0, device="cpu").fit(X_train)
    assert -model.score(X_test) < 0.85 * pca_error
    assert model.n_iter_ < 1_000  # stopped on the held-out loss, well inside the budget


def test_autoencoder_loss_is_the_squared_error_in_input_units(moons):
    X = moons * [1.0, 10.0]
    model = AutoEncoder(1, hidden=(16,), **FAST).fit(X)
    np.testing.assert_allclose(model.data_scale_, np.sqrt(X.var(axis=0).mean()), rtol=1e-6)  # one common scale
    rebuilt = model.inverse_transform(model.transform(X))
    assert model.score(X) == pytest.approx(-((rebuilt - X) ** 2).sum(axis=1).mean(), rel=1e-5)


def test_autoencoder_transformer_interface_and_dataframes(moons):
    frame = pd.DataFrame(moons, columns=["a", "b"])
    model = AutoEncoder(3, hidden=(16,), **FAST).fit(frame)
    assert model.get_feature_names_out().tolist() == ["z0", "z1", "z2"]
    codes = model.set_output(transform="pandas").transform(frame)
    assert list(codes.columns) == ["z0", "z1", "z2"] and codes.index.equals(frame.index)
    decoded = model.inverse_transform(codes)
    assert isinstance(decoded, pd.DataFrame) and list(decoded.columns) == ["a", "b"]
    pipeline = make_pipeline(AutoEncoder(2, hidden=(16,), **FAST), GaussianMixture(2, random_state=0)).fit(frame)
    assert set(np.unique(pipeline.predict(frame))) <= {0, 1}
    with pytest.raises(ValueError, match=r"Z must have shape \(n_samples, 3\)"):
        model.inverse_transform(np.zeros((2, 2)))


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: AutoEncoder(2, hidden=(16,), **FAST), "moons"),
        (lambda: AutoEncoder(3, architecture="conv", channels=(8,), **FAST), "images"),
    ],
)
def test_autoencoder_exports_encoder_and_decoder(make, data, moons, digit_images, tmp_path):
    X = moons if data == "moons" else digit_images
    model = make().fit(X)
    export(model, tmp_path)
    report = validate(model, tmp_path, X)
    assert report.passed and set(report.outputs) == {"encoder.z", "decoder.reconstruction"}
    assert report.outputs["encoder.z"].max_abs_error < 1e-4
    np.testing.assert_allclose(load(tmp_path, graph="encoder").transform(X[:5]), model.transform(X[:5]), atol=1e-5)
    np.testing.assert_allclose(
        load(tmp_path, graph="decoder").inverse_transform(model.transform(X[:5])),
        model.inverse_transform(model.transform(X[:5])),
        rtol=1e-4,
        atol=1e-4,
    )


# ----------------------------------------------------------------------- DDPM
def test_ddpm_samples_in_the_input_form(moons, digit_images):
    frame = pd.DataFrame(moons, columns=["x", "y"])
    model = DDPM(n_steps=20, hidden=16, n_blocks=1, **FAST).fit(frame)
    assert model.architecture_ == "mlp"
    samples = model.sample(5, random_state=0)
    assert list(samples.columns) == ["x", "y"] and len(samples) == 5
    pd.testing.assert_frame_equal(samples, model.sample(5, random_state=0))
    assert model.sample(5, random_state=0, sampler="ddim", n_sampling_steps=5).shape == (5, 2)
    images = DDPM(n_steps=10, channels=(8, 16), **FAST).fit(digit_images)
    assert images.architecture_ == "unet" and images.sample(2, random_state=0, n_sampling_steps=3).shape == (2, 8, 8)
    assert np.isfinite(images.score(digit_images)) and images.score(digit_images) == -images.denoising_loss(
        digit_images
    )


def test_sample_from_noise_is_sample_for_the_same_draws(moons):
    model = DDPM(n_steps=30, hidden=16, n_blocks=1, **FAST).fit(moons)
    initial, steps = model.sampling_noise(6, random_state=3)
    first = model.sample_from_noise(initial, steps)
    np.testing.assert_array_equal(first, model.sample_from_noise(initial, steps))
    deterministic = model.sample_from_noise(initial, steps * 0, sampler="ddim")
    np.testing.assert_allclose(
        deterministic, model.sample_from_noise(initial, steps, sampler="ddim")
    )  # eta = 0 ignores z


@pytest.mark.parametrize("settings", [{}, {"sampler": "ddim", "n_sampling_steps": 10}])
@pytest.mark.parametrize("data", ["moons", "images"])
def test_ddpm_exports_denoiser_and_a_one_graph_sampler(settings, data, moons, digit_images, tmp_path):
    if data == "moons":
        model, X = DDPM(n_steps=40, hidden=32, n_blocks=2, **FAST).fit(moons), moons
    else:
        model, X = DDPM(n_steps=40, channels=(8, 16), **FAST).fit(digit_images), digit_images
    export(model, tmp_path, **settings)
    report = validate(model, tmp_path, X)
    assert report.passed
    assert report.outputs["denoiser.eps"].max_abs_error <= 1e-4
    samples_error = report.outputs["sampler.samples"].max_abs_error / float(np.max(model.data_scale_))
    assert samples_error <= 1e-3  # in the net's scale
    metadata = json.loads((tmp_path / "model.json").read_text())
    assert metadata["graphs"]["sampler"]["outputs"][0]["kwargs"]["sampler"] == settings.get("sampler", "ddpm")


SAMPLER_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime as ort
folder = sys.argv[1]
data = np.load(folder + "/noise.npz")
session = ort.InferenceSession(folder + "/sampler.onnx", providers=["CPUExecutionProvider"])
samples = session.run(None, {"initial_noise": data["initial"], "step_noise": data["steps"]})[0]
np.save(folder + "/samples.npy", samples)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "toolkit", "sklearn"))))
"""


def test_sampler_graph_runs_with_onnxruntime_alone(moons, tmp_path):
    model = DDPM(n_steps=25, hidden=16, n_blocks=1, **FAST).fit(moons)
    export(model, tmp_path)
    initial, steps = model.sampling_noise(5, random_state=1)
    np.savez(tmp_path / "noise.npz", initial=initial, steps=steps)
    result = subprocess.run(
        [sys.executable, "-c", SAMPLER_SCRIPT, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
    np.testing.assert_allclose(
        np.load(tmp_path / "samples.npy"), model.sample_from_noise(initial, steps), atol=1e-4, rtol=1e-5
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: VAE(2, hidden=(8,), early_stopping=True, **FAST),
        lambda: DDPM(n_steps=10, hidden=8, n_blocks=1, early_stopping=True, **FAST),
    ],
)
def test_early_stopping_watches_a_held_out_loss(make, moons):
    """The shared loop's validation pass handles nets that return several tensors."""
    model = make().fit(moons)
    assert all(np.isfinite(h["valid_loss"]) for h in model.history_)


# --------------------------------------------------------------------- errors
def test_bad_input_gets_clear_errors(moons):
    model = DDPM(n_steps=10, hidden=8, n_blocks=1, **FAST).fit(moons)
    with pytest.raises(ValueError, match="NaN"):
        DDPM(**FAST).fit(np.where(moons > 1.5, np.nan, moons))
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        model.sample(0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        model.sample(2, sampler="euler")
    with pytest.raises(ValueError, match=r"n_sampling_steps must be an int in \[1, 10\]"):
        model.sample(2, n_sampling_steps=11)
    with pytest.raises(ValueError, match="X has 3 features, but DDPM is expecting 2"):
        model.score(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"step_noise must have shape \(2, 10, 2\)"):
        model.sample_from_noise(np.zeros((2, 2)), np.zeros((2, 9, 2)))
    with pytest.raises(ValueError, match=r"t must hold integer steps in \[0, 9\]"):
        model.predict_noise(np.zeros((2, 2)), 10)
    vae = VAE(2, hidden=(8,), **FAST).fit(moons)
    with pytest.raises(ValueError, match=r"Z must have shape \(n_samples, 2\)"):
        vae.inverse_transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        vae.sample(-1)
    with pytest.raises(ValueError, match="likelihood='bernoulli' needs values in"):
        VAE(2, likelihood="bernoulli", **FAST).fit(moons)
    with pytest.raises(ValueError, match=r"image_shape=\(1, 4, 4\) holds 16 values per image, but X has 64"):
        VAE(2, architecture="conv", image_shape=(4, 4), **FAST).fit(np.zeros((10, 64)))


class GaussianOracle(torch.nn.Module):
    """The exact eps(x_t, t) = sqrt(1 - alpha_bar_t) x_t for data distributed N(0, I)."""

    def __init__(self, alpha_bar):
        super().__init__()
        self.register_buffer("alpha_bar", torch.as_tensor(alpha_bar, dtype=torch.float32))

    def forward(self, x, t):
        return torch.sqrt(1 - self.alpha_bar[t])[:, None] * x


@pytest.mark.parametrize("settings", [{}, {"sampler": "ddim"}, {"sampler": "ddim", "eta": 0.5}])
def test_samplers_with_the_exact_noise_reproduce_gaussian_data(settings):
    """With the true eps of N(0, I) data and all 1000 steps, every sampler returns N(0, I)
    (in the net's scale). Coarser step counts shrink the spread a little: DDPM's variance
    beta~ leaves out Var(x_0 | x_t), and DDIM's deterministic steps contract by cos of each
    step's angle, so this test holds the samplers to the fine-step limit."""
    data = np.random.default_rng(0).standard_normal((500, 2))
    model = DDPM(n_steps=1000, hidden=8, n_blocks=1, max_epochs=1, ema_decay=0.0, random_state=0, device="cpu").fit(
        data
    )
    model.module_.denoiser = GaussianOracle(model.schedule_.alpha_bar)
    initial, steps = model.sampling_noise(10_000, random_state=0)
    samples = model._scale(np.asarray(model.sample_from_noise(initial, steps, **settings), dtype=np.float32))
    np.testing.assert_allclose(samples.mean(axis=0), 0, atol=0.03)
    np.testing.assert_allclose(samples.std(axis=0), 1, atol=0.02)


class Snapshots:
    """The trained weights after every epoch (one optimizer step an epoch here)."""

    def __init__(self):
        self.weights = []

    def on_epoch_end(self, model, history):
        self.weights.append([p.detach().clone() for p in model.module_.parameters()])


def test_the_weights_average_follows_its_recurrence_and_serves_inference(moons, tmp_path):
    """w_ema = w_1, then w_ema <- d w_ema + (1 - d) w_k with d = min(decay, (1 + k) / (10 + k))."""
    snapshots = Snapshots()
    model = DDPM(
        hidden=8,
        n_blocks=1,
        n_steps=20,
        batch_size=len(moons),
        max_epochs=30,
        ema_decay=0.9,
        callbacks=[snapshots],
        random_state=0,
    )
    model.fit(moons)
    assert model.optimizer_steps_ == 30 and len(snapshots.weights) == 30
    expected = [w.clone() for w in snapshots.weights[0]]
    for k, weights in enumerate(snapshots.weights[1:], start=1):
        d = min(0.9, (1 + k) / (10 + k))
        expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
    for got, want in zip(model.ema_.module.parameters(), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    x_t, t = model.diffuse(moons[:50], random_state=0)
    with torch.no_grad():
        averaged = model.ema_.module.denoiser(torch.from_numpy(x_t), torch.from_numpy(t)).numpy()
        trained = model.module_.denoiser(torch.from_numpy(x_t), torch.from_numpy(t)).numpy()
    assert not np.allclose(averaged, trained, atol=1e-3)
    np.testing.assert_allclose(model.predict_noise(x_t, t), averaged, atol=1e-6)  # inference reads the average
    export(model, tmp_path)
    exported = load(tmp_path, graph="denoiser").run({"X_t": x_t, "t": t})["eps"]
    np.testing.assert_allclose(exported, averaged, atol=1e-5)  # and so does the export
    with pytest.raises(ValueError, match="ema_decay"):
        DDPM(ema_decay=1.0).fit(moons)


class ZeroX0Oracle(torch.nn.Module):
    """eps = x / sqrt(1 - alpha_bar_t): the predicted x_0 is 0 at every step, inside any range."""

    def __init__(self, alpha_bar):
        super().__init__()
        self.register_buffer("alpha_bar", torch.as_tensor(alpha_bar, dtype=torch.float32))

    def forward(self, x, t):
        return x / torch.sqrt(1 - self.alpha_bar[t]).reshape((-1,) + (1,) * (x.dim() - 1))


class ZeroEpsOracle(torch.nn.Module):
    """eps = 0: the predicted x_0 = x_t / sqrt(alpha_bar_t) runs far out of range at large t."""

    def forward(self, x, t):
        return torch.zeros_like(x)


def fake_denoiser(model, oracle):
    for net in (model.module_, model.ema_.module):
        net.denoiser = oracle


def test_clip_sample_changes_nothing_in_range_and_keeps_pixels_in_range(digit_images, tmp_path):
    images = digit_images[:64]
    settings = dict(channels=(8,), groups=4, n_steps=50, max_epochs=1, random_state=0)
    clipped = DDPM(clip_sample=True, **settings).fit(images)
    free = DDPM(clip_sample=False, **settings).fit(images)
    assert clipped.clip_range_ == (-1.0, 1.0) and free.clip_range_ is None
    assert DDPM(**settings).fit(images).clip_range_ is not None  # "auto" clips images
    initial, steps = clipped.sampling_noise(16, random_state=0)
    for model in (clipped, free):
        fake_denoiser(model, ZeroX0Oracle(model.schedule_.alpha_bar))
    np.testing.assert_array_equal(clipped.sample_from_noise(initial, steps), free.sample_from_noise(initial, steps))
    for model in (clipped, free):
        fake_denoiser(model, ZeroEpsOracle())
    low, high = images.min(), images.max()
    inside = clipped.sample_from_noise(initial, steps)
    assert inside.min() >= low - 1e-4 and inside.max() <= high + 1e-4
    outside = free.sample_from_noise(initial, steps)
    assert outside.max() > high + 1 or outside.min() < low - 1
    export(clipped, tmp_path)  # the clip lives inside the ONNX Loop body too
    sampler = load(tmp_path, graph="sampler").run({"initial_noise": initial, "step_noise": steps})["samples"]
    np.testing.assert_allclose(sampler, inside, atol=1e-4)


def test_clip_sample_for_rows_uses_each_features_range(moons):
    model = DDPM(hidden=8, n_blocks=1, n_steps=20, max_epochs=1, clip_sample=True, random_state=0).fit(moons)
    low, high = model.clip_range_
    np.testing.assert_allclose(low, model._scale(moons).min(axis=0))
    np.testing.assert_allclose(high, model._scale(moons).max(axis=0))
    fake_denoiser(model, ZeroEpsOracle())
    samples = np.asarray(model.sample(200, random_state=0))
    assert (samples >= moons.min(axis=0) - 1e-4).all() and (samples <= moons.max(axis=0) + 1e-4).all()


def probabilistic_pca_vae(X, W, mu, sigma, variance_inflation):
    """A fitted VAE turned into probabilistic PCA, x = W z + mu + N(0, sigma^2 I): a linear decoder,
    a fixed isotropic noise, an encoder giving the exact posterior mean with its variance
    inflated (so that the ELBO is loose), and no input scaling."""
    from torch import nn

    from toolkit.nn.vae import GaussianEncoder

    D, L = W.shape
    model = VAE(L, hidden=(4,), max_epochs=1, random_state=0).fit(X)
    model.data_offset_, model.data_scale_ = np.zeros(D, np.float32), np.ones(D, np.float32)
    M = W.T @ W + sigma**2 * np.eye(L)
    decoder, body = nn.Linear(L, D), nn.Linear(D, 2 * L)
    with torch.no_grad():
        decoder.weight.copy_(torch.as_tensor(W)), decoder.bias.copy_(torch.as_tensor(mu))
        body.weight.copy_(torch.as_tensor(np.vstack([np.linalg.solve(M, W.T), np.zeros((L, D))])))
        body.bias.copy_(
            torch.as_tensor(np.r_[-np.linalg.solve(M, W.T) @ mu, np.log(variance_inflation * sigma**2 / np.diag(M))])
        )
        model.module_.observation.log_var.fill_(2 * np.log(sigma))
    model.module_.autoencoder.encoder, model.module_.autoencoder.decoder = GaussianEncoder(body, L), decoder
    return model


def test_importance_weighted_log_likelihood_closes_on_probabilistic_pcas_exact_value():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    W, mu, sigma = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), np.array([1.0, -1.0, 0.5]), 0.5  # orthogonal columns
    X = (rng.standard_normal((400, 2)) @ W.T + mu + sigma * rng.standard_normal((400, 3))).astype(np.float32)
    exact = multivariate_normal(mu, W @ W.T + sigma**2 * np.eye(3)).logpdf(X).mean()
    model = probabilistic_pca_vae(X, W, mu, sigma, variance_inflation=3.0)
    elbo = model.score(X)
    bounds = [model.log_likelihood(X, n_samples=k, random_state=0).mean() for k in (1, 10, 100, 1000)]
    assert elbo < exact - 0.2  # the inflated posterior leaves a gap
    assert bounds[0] == pytest.approx(elbo, abs=0.05)  # one draw: the ELBO
    assert bounds == sorted(bounds) and bounds[-1] <= exact + 0.01
    assert exact - bounds[-1] < 0.05
    exact_posterior = probabilistic_pca_vae(X, W, mu, sigma, variance_inflation=1.0)
    np.testing.assert_allclose(exact_posterior.log_likelihood(X, n_samples=3).mean(), exact, atol=1e-4)
    with pytest.raises(ValueError, match="n_samples must be an int >= 1, got 0"):
        model.log_likelihood(X, n_samples=0)


def analytic_bound_of_the_exact_denoiser(schedule) -> float:
    """E[-L] per value for N(0, 1) data and the exact eps (so x_0_hat = E[x_0 | x_t], residual
    variance 1 - alpha_bar_t): the prior KL, sum_t coef_x0^2 (1 - ab_t) / (2 beta~_t), and the
    Gaussian decoder's 1/2 (1 + log(2 pi beta_1))."""
    ab = schedule.alpha_bar
    steps = sum(
        schedule.posterior_mean_coef_x0[t] ** 2 * (1 - ab[t]) / (2 * schedule.posterior_variance[t])
        for t in range(1, len(ab))
    )
    return -(-0.5 * np.log(1 - ab[-1]) + steps + 0.5 * (1 + np.log(2 * np.pi * schedule.betas[0])))


def test_the_variational_bound_is_below_the_true_log_likelihood_of_gaussian_data():
    from scipy.stats import norm

    data = np.random.default_rng(0).normal(3.0, 2.0, (2000, 1))
    exact = norm(data.mean(), data.std()).logpdf(data[:, 0]).mean()  # the scaled data are N(0, 1) exactly in moments
    oracle = DDPM(n_steps=1000, hidden=8, n_blocks=1, max_epochs=1, ema_decay=0.0, random_state=0).fit(data)
    oracle.module_.denoiser = GaussianOracle(oracle.schedule_.alpha_bar)
    bound = oracle.log_likelihood(data).mean()
    expected = analytic_bound_of_the_exact_denoiser(oracle.schedule_) - np.log(oracle.data_scale_).sum()
    assert bound == pytest.approx(expected, abs=0.05)
    assert bound < exact  # a bound: the reverse steps' variance beta~ leaves a gap of ~0.47 nats at T = 1000
    trained = DDPM(hidden=32, n_blocks=2, max_steps=3000, random_state=0).fit(data)
    learned = trained.log_likelihood(data).mean()
    assert exact - 0.75 < learned < exact  # within the exact denoiser's gap and a little more
    mc = trained.log_likelihood(data, n_timesteps=200, random_state=0).mean()
    assert mc == pytest.approx(learned, abs=0.2)
    assert trained.bits_per_dim(data) == pytest.approx(-learned / np.log(2), rel=1e-9)
    with pytest.raises(ValueError, match="n_timesteps must be an int >= 1 or None, got 0"):
        trained.log_likelihood(data, n_timesteps=0)


def test_integer_images_get_the_discretised_decoder(digit_images):
    pixels = digit_images  # digits' 17 levels, 0..16
    model = DDPM(channels=(8,), groups=4, n_steps=100, max_epochs=1, random_state=0).fit(pixels)
    assert model.n_levels_ == 17
    bits = model.bits_per_dim(pixels[:20])
    assert 0 < bits < np.log2(17) * 10  # a probability of the exact image: positive bits per pixel
    with pytest.raises(ValueError, match=r"fitted on images of 17 integer levels in \[0, 16\].*not all integers"):
        model.log_likelihood(pixels[:2] + 0.5)
    with pytest.raises(ValueError, match=r"X holds values in \[1, 17\]"):
        model.log_likelihood(np.clip(pixels[:2] + 1, 0, 17))
    assert (
        DDPM(channels=(8,), groups=4, n_steps=100, max_epochs=1, random_state=0).fit(digit_images / 16).n_levels_
        is None
    )
