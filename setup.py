from setuptools import setup

setup(
    name="sr-thesis",
    version="0.1.0",
    description="Image super-resolution with neural networks: SRCNN, GAN basics, SRGAN and ESRGAN "
    "in TensorFlow 2 / Keras 3",
    python_requires=">=3.11",
    packages=["common", "common.mos", "srcnn", "gan_toys", "srgan", "esrgan", "benchmarks"],
    package_data={
        "common": ["assets/*"],
        "common.mos": ["static/*"],  # the MOS rating page (HTML, JS, CSS)
        "srcnn": ["weights/*"],
        "srgan": ["weights/*"],
        "esrgan": ["weights/*"],
    },
    # Each chapter declares itself (common.registry.Chapter); the library finds it only here.
    entry_points={
        "sr_toolkit.chapters": [
            "srcnn = srcnn.chapter:CHAPTER",
            "srgan = srgan.chapter:CHAPTER",
            "esrgan = esrgan.chapter:CHAPTER",
        ],
    },
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "numpy",
        "opencv-python-headless",
        "h5py",
        "matplotlib",
        "scikit-image",
        "scipy",
        "tqdm",
        "tensorboard",
        "Pillow>=11",  # ICC profiles (ImageCms), EXIF/XMP of photos
        "tifffile",  # TIFF outputs with a profile (16-bit RGB, which Pillow cannot hold)
        "openvino",  # the default inference engine (common.backends)
        "nncf",  # --precision int8: post-training quantization of the OpenVINO model (common.quantize)
    ],
    extras_require={
        "dev": ["pytest", "nbclient", "nbmake", "ipykernel", "nbformat", "selenium"],
        "export": ["tf2onnx", "onnxruntime"],
        "torch": ["torch"],
    },
)
