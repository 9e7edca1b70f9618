"""BlockConv2D computes keras Conv2D on space_to_depth blocks: same outputs, gradients and files."""
import numpy as np
import pytest
import tensorflow as tf
import keras

from common.layers import BlockConv2D


def pair(kernel, cin, filters, block, seed=0):
    rng = np.random.default_rng(seed)
    ref = keras.layers.Conv2D(filters, kernel, padding="same")
    blk = BlockConv2D(filters, kernel, block=block)
    ref.build((None, None, None, cin))
    blk.build((None, None, None, cin))
    weights = [rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    blk.set_weights(weights)
    return ref, blk


@pytest.mark.parametrize("kernel,cin,filters,block,size", [
    (9, 8, 3, 4, (2, 13, 10)),   # sizes not multiples of the block
    (9, 5, 3, 4, (1, 16, 16)),
    (5, 3, 2, 2, (1, 7, 9)),
    (3, 4, 1, 3, (1, 8, 5)),
    (7, 2, 3, 4, (1, 3, 2)),     # image smaller than a kernel and a block
])
def test_outputs_and_gradients_equal_conv2d(kernel, cin, filters, block, size):
    ref, blk = pair(kernel, cin, filters, block)
    x = tf.constant(np.random.default_rng(1).normal(size=size + (cin,)).astype("float32"))
    y_ref, y_blk = ref(x), blk(x)
    assert y_blk.shape == y_ref.shape
    scale = float(tf.reduce_max(tf.abs(y_ref)))
    np.testing.assert_allclose(y_blk.numpy(), y_ref.numpy(), atol=1e-5 * scale)
    grads = []
    for layer in (ref, blk):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x)))
        grads.append(tape.gradient(loss, [x] + layer.trainable_weights))
    for g_ref, g_blk in zip(*grads):
        np.testing.assert_allclose(g_blk.numpy(), g_ref.numpy(), atol=1e-4 * float(tf.reduce_max(tf.abs(g_ref))))


def test_a_wrong_setting_is_refused():
    with pytest.raises(ValueError, match="stride 1"):
        BlockConv2D(3, 3, strides=2)
    with pytest.raises(ValueError, match="same"):
        BlockConv2D(3, 3, padding="valid")


def test_whole_model_file_reloads(tmp_path):
    inp = keras.Input((None, None, 4))
    model = keras.Model(inp, BlockConv2D(3, 9, name="tail")(inp))
    path = tmp_path / "m.h5"
    model.save(path)
    again = keras.models.load_model(path, compile=False)
    assert isinstance(again.get_layer("tail"), BlockConv2D) and again.get_layer("tail").block == 4
    x = np.random.default_rng(2).random((1, 11, 6, 4)).astype("float32")
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-6)
