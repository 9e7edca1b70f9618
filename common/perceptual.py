"""Feature networks for the perceptual losses (common.losses.FeatureLoss), with or without ImageNet
VGG19 weights.

A feature loss compares the feature maps a frozen network gives for HR and SR. With ImageNet
VGG19 (the papers' choice) the raw distances keep the papers' scaling. Offline substitutes:

* ``vgg-random``: VGG19 with He-normal random weights (Liu et al., "Generic Perceptual Loss",
  CVPR 2021: untrained deep networks still measure structure). Raw distances of random features
  are tiny and differ by orders of magnitude between layers, so each layer's distance is divided
  by the magnitude of its HR features (``normalise=True``): the loss is a relative error, about
  the same size whatever the weights.
* ``disc-features``: feature matching on the GAN's own discriminator (Salimans et al., 2016, per
  image as in pix2pixHD): its hidden layers, shared with the discriminator being trained.
* ``pretrained-disc``: a frozen pretrained discriminator's hidden layers (a chapter's published
  one, loaded by its checkpoint spec).

Callers pass images in their own range; the loss' `to_input` maps them to the network's input range.
"""
import keras

import common  # noqa: F401  (quiet TensorFlow import)
from common.gan_settings import PERCEPTUAL_NETWORKS  # noqa: F401  (the names, importable without TensorFlow)

PRETRAINED_DESCRIPTION = "krasserm's published SRGAN discriminator (frozen)"  # what 'pretrained-disc' loads


def hidden_layers(model: keras.Model, names, input_shape=(None, None, 3)) -> keras.Model:
    """A model of any input size giving `model`'s layers `names` (a dict keyed by name), built by
    calling `model`'s own layers again (the weights are shared, so a discriminator's trunk follows
    its training). Works for plain chains of layers such as the GANs' VGG-style discriminators."""
    wanted, outputs = list(names), {}
    inputs = keras.Input(input_shape, name=f"{model.name}_features_input")
    x = inputs
    for layer in model.layers[1:]:
        if len(outputs) == len(wanted):
            break
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Dense)):
            break
        x = layer(x)
        if layer.name in wanted:
            outputs[layer.name] = x
    missing = [n for n in wanted if n not in outputs]
    if missing:
        raise ValueError(f"{model.name} has no convolutional layer {missing[0]!r}")
    return keras.Model(inputs, outputs, name=f"{model.name}_features")


def feeding_layer(model: keras.Model, name: str) -> str:
    """The name of the layer whose output `model`'s layer `name` takes (what an activation acts on)."""
    return model.get_layer(name).input._keras_history.operation.name


def frozen(model: keras.Model) -> keras.Model:
    """`model` with its weights excluded from training (a fixed feature network)."""
    model.trainable = False
    return model


def pretrained_discriminator(spec: str) -> keras.Model:
    """A published discriminator, frozen: `spec` is a checkpoint path or a named weight source
    (common.checkpoints.load_model)."""
    from common.checkpoints import load_model

    return frozen(load_model(spec)[0])


def perceptual_description(network: str, distance: str, *, vgg_layer: str, before_activation: bool,
                           disc_layers=(), vgg_weights="imagenet", seed: int = 0, vgg_scaling: str = "") -> str:
    """Which feature network a perceptual loss used, for the checkpoint's JSON and the README.

    network: one of PERCEPTUAL_NETWORKS; distance: "MSE" or "L1"; vgg_layer / before_activation:
    the VGG19 layer and whether it is taken before its ReLU; disc_layers: the discriminator's
    layers (disc-features, pretrained-disc); vgg_weights: of vgg-imagenet (None: untrained);
    seed: of vgg-random; vgg_scaling: what follows the distance for ImageNet VGG (" / 12.75^2")."""
    if network in ("vgg-imagenet", "vgg-random"):
        where = f"VGG19 {vgg_layer} {'before' if before_activation else 'after'} ReLU"
        if network == "vgg-imagenet":
            source = "random (untrained, glorot)" if vgg_weights is None else f"ImageNet ({vgg_weights})"
            return f"{where}, {source} weights, {distance}{vgg_scaling}"
        return f"{where}, random He-normal weights (seed {seed}), {distance} normalised per layer"
    whose = "the GAN's own discriminator" if network == "disc-features" else PRETRAINED_DESCRIPTION
    return f"{whose}: {', '.join(disc_layers)}, {distance} normalised per layer"
