import common  # noqa: F401  (imports TensorFlow quietly)
