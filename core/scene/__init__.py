"""The synthetic sample scene: a small, physically reasoned world with a known 1 km truth,
written as the folders a real user would have (see ``generate.py`` for the layout).

    from ssm_downscaling.core.scene import SceneConfig, generate_scene, PLACES
    info = generate_scene(SceneConfig(place="tibet", days=92), "out/")
"""

from .config import GENERATOR_VERSION, SceneConfig, SceneError
from .generate import LAYOUT, SceneInfo, composite_start, generate_scene, scene_paths, small_scene
from .places import PLACES, Place

__all__ = [
    "GENERATOR_VERSION",
    "LAYOUT",
    "PLACES",
    "Place",
    "SceneConfig",
    "SceneError",
    "SceneInfo",
    "composite_start",
    "generate_scene",
    "scene_paths",
    "small_scene",
]
