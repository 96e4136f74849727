"""Training the torch recipes' networks: one loop, explicit randomness, training-time defenses as plug-ins.

- :mod:`.loop`: :func:`train`, the one training loop (plain, DP-SGD and every other defense go through it);
- :mod:`.vectorized`: K models at once as one batched computation, from the loop's pieces;
- :mod:`.fused`: the stacked optimizer of vectorized training (torch's fused Adam/SGD kernels, no ``torch.optim``);
- :mod:`.precision`: the arithmetic reference models are trained in (fp32, bf16-matmul, bf16), in a registry;
- :mod:`.randomness`: the streams (``torch.Generator`` objects) of one model, derived from its seed;
- :mod:`.networks`: the architectures, initialized from a given generator;
- :mod:`.options`: the recipes' options, declared once with their constraints;
- :mod:`.defenses`: the training-time defenses, one module each, in a registry.

Nothing here imports torch until a model is trained, and nothing imports :mod:`memberscope.recipes`.
"""

from memberscope.training.defenses import DEFENSES, TrainingDefense, active_defenses, recipe_options, register
from memberscope.training.loop import TrainedEnsemble, TrainedNetwork, train
from memberscope.training.options import Option
from memberscope.training.randomness import Streams
from memberscope.training.vectorized import supports_vectorized, train_vectorized, vectorized_bytes_per_model

__all__ = [
    "DEFENSES",
    "Option",
    "Streams",
    "TrainedEnsemble",
    "TrainedNetwork",
    "TrainingDefense",
    "active_defenses",
    "recipe_options",
    "register",
    "supports_vectorized",
    "train",
    "train_vectorized",
    "vectorized_bytes_per_model",
]
