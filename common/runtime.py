"""Device and precision set-up shared by every CLI."""
import common  # noqa: F401  (quiet TensorFlow import)
import keras
import tensorflow as tf


def setup_devices(mixed_precision: bool = False, verbose: bool = False) -> str:
    """Let GPUs grow their memory and optionally enable mixed precision; return a summary.

    TensorFlow places ops on a visible GPU by itself; this only avoids grabbing all its memory.
    Mixed precision means float16 on a GPU and bfloat16 on a CPU.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised
            pass
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "mixed_bfloat16")
    summary = f"{len(gpus)} GPU(s)" if gpus else "CPU"
    if verbose:
        print(f"device: {summary}")
    return summary
