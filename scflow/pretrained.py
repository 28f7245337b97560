"""Offline-first loading of the real-scale pretrained weights (docs/METHOD.md §6).

Nothing here touches the network unless a caller passes ``allow_download=True``. A name is
resolved in this order:

1. a local directory (e.g. made with ``hf download <id> --local-dir <dir>``) is used as is,
   after checking it holds the files the loader needs;
2. otherwise a Hugging Face hub id is looked up in the local HF cache (``HF_HUB_CACHE`` /
   ``HF_HOME``, read at call time) with ``local_files_only=True``;
3. otherwise :class:`WeightsUnavailableError` is raised at once, naming what is missing, the
   command that fetches it on a machine with network, and the parameter to pass afterwards.

Loaders on top return objects in this project's conventions: UNets come back as
:class:`~scflow.nets.VelocityNet` (``v = net(z, t, cond)``, t in [0, 1], t = 1 is noise).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from scflow.cache import REPO_ROOT
from scflow.nets import VelocityNet, _jsonable, check_config_match

SD_LATENT_SCALE = 0.18215
"""Stable Diffusion VAE latent scale: ``z0 = SD_LATENT_SCALE * E(x)`` (docs/METHOD.md §1)."""

SD_VAE_ID = "stabilityai/sd-vae-ft-mse"
INSTAFLOW_2RF_ID = "XCLIU/2_rectified_flow_from_sd_1_5"
INSTAFLOW_09B_ID = "XCLiu/instaflow_0_9B_from_sd_1_5"
SCFLOW_T2I_ID = "haopt/scflow_t2i"
SCFLOW_T2I_SUBFOLDER = "checkpoint-18000/unet_ema"
"""The released SCFlow text-to-image student: the EMA UNet after 18k updates (diffusers
``EMAModel.save_pretrained`` folder: a ``UNet2DConditionModel`` config plus EMA fields)."""

LOCAL_WEIGHTS = {SD_VAE_ID: "weights/sd-vae-ft-mse", INSTAFLOW_2RF_ID: "weights/2rf",
                 INSTAFLOW_09B_ID: "weights/instaflow_0_9B", SCFLOW_T2I_ID: "weights/scflow_t2i"}
"""Hub id -> the folder the README downloads it to (from the repository root); presets and
error messages name the same folders. LFM's teacher: :data:`LFM_MODEL_480_PATH`."""
HUB_ID_OF = {local: hub_id for hub_id, local in LOCAL_WEIGHTS.items()}
LFM_MODEL_480_PATH = "weights/lfm/model_480.pth"

INSTAFLOW_TIME_SCALE = 1000.0
"""InstaFlow / 2-RF UNets take the timestep ``1000 t`` and predict noise -> data (sign -1)."""

# Files a folder must hold for each loader; "a|b" means either pattern is enough.
WEIGHTS = "*.safetensors|*.bin|*.safetensors.index.json|*.bin.index.json"
DIFFUSERS_MODEL_FILES = ("config.json", WEIGHTS)
TOKENIZER_FILES = ("tokenizer.json|vocab.json", "tokenizer.json|merges.txt")
TRANSFORMERS_MODEL_FILES = ("config.json", WEIGHTS)


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights are neither a local folder nor in the local Hugging Face cache."""


def _hf_cache_dir() -> Path:
    """The hub cache as the environment says NOW (huggingface_hub reads it once at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _looks_like_hub_id(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) is not None and not name.startswith(".")


def _missing_files(folder: Path, expect: Sequence[str]) -> list[str]:
    """Entries of ``expect`` (glob patterns, ``|`` = alternatives) with no match in ``folder``."""
    if not folder.is_dir():
        return [f"{folder} (no such directory)"]
    return [pat for pat in expect
            if not any(any(folder.glob(alt)) for alt in pat.split("|"))]


def _hint(name: str, what: str, subfolder: str | None, param: str | None) -> str:
    name = HUB_ID_OF.get(name, name)
    local = LOCAL_WEIGHTS.get(name) or Path("weights") / name.replace("/", "--")
    sub = f" --include '{subfolder}/*'" if subfolder else ""
    pass_as = (f"pass it as `{param}` (`{param}: {local}`)" if param
               else "pass that directory instead of the hub id")
    return (f"{what} is not available offline ({name!r}"
            f"{f', subfolder {subfolder!r}' if subfolder else ''}).\n"
            f"On a machine with network run:\n"
            f"    hf download {name}{sub} --local-dir {local}\n"
            f"(older huggingface_hub: `huggingface-cli download {name} --local-dir {local}`),\n"
            f"copy that folder here (e.g. to {local}) and {pass_as}, "
            f"or fill the HF cache at {_hf_cache_dir()}.")


def resolve_pretrained(name_or_path: str, *, what: str, subfolder: str | None = None,
                       expect: Sequence[str] = DIFFUSERS_MODEL_FILES,
                       allow_download: bool = False, param: str | None = None,
                       timeout_s: float = 10.0) -> Path:
    """Return the local folder holding ``name_or_path`` (joined with ``subfolder``).

    Args:
        name_or_path: a local directory or a Hugging Face hub id (``owner/name``).
        what: human description for error messages (e.g. "the SD VAE").
        subfolder: folder inside the repository (``"unet"`` for a diffusers pipeline).
        expect: glob patterns that must each match a file in the resolved folder.
        allow_download: only then is the network used (short ``timeout_s`` metadata timeout;
            ``HF_HUB_OFFLINE=1`` still wins and keeps it offline).
        param: the parameter name a user should set to the downloaded folder (for the hint).

    Raises:
        WeightsUnavailableError: immediately when nothing usable is found locally.
    """
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).is_dir():
        path = REPO_ROOT / path  # weights/... as the README downloads them, from any folder
    if path.is_dir():
        folder = path / subfolder if subfolder else path
        missing = _missing_files(folder, expect)
        if missing:
            raise WeightsUnavailableError(
                f"{what}: local folder {folder} lacks {', '.join(missing)} (expected a "
                f"diffusers/transformers save_pretrained folder)")
        return folder
    hub_id = HUB_ID_OF.get(str(name_or_path).rstrip("/"))
    if hub_id:  # the README's folder is not there: the same weights in the HF cache do as well
        return resolve_pretrained(hub_id, what=what, subfolder=subfolder, expect=expect,
                                  allow_download=allow_download, param=param, timeout_s=timeout_s)
    if not _looks_like_hub_id(name_or_path):
        raise WeightsUnavailableError(
            f"{what}: {name_or_path!r} is neither an existing directory nor a hub id "
            f"(owner/name). {_hint(name_or_path, what, subfolder, param)}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = [f"{subfolder}/*", "model_index.json"] if subfolder else None
    root: Path | None = None
    try:
        root = Path(snapshot_download(name_or_path, cache_dir=_hf_cache_dir(),
                                      local_files_only=True, allow_patterns=patterns))
    except (LocalEntryNotFoundError, FileNotFoundError, HfHubHTTPError, OSError, ValueError):
        root = None
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    folder = (root / subfolder if subfolder else root) if root is not None else None
    if (folder is None or _missing_files(folder, expect)) and allow_download and not offline:
        try:
            root = Path(snapshot_download(name_or_path, cache_dir=_hf_cache_dir(),
                                          allow_patterns=patterns, etag_timeout=timeout_s))
        except Exception as err:  # network, auth, missing repo: all end the same way
            raise WeightsUnavailableError(
                f"download failed ({type(err).__name__}: {err}).\n"
                + _hint(name_or_path, what, subfolder, param)) from err
        folder = root / subfolder if subfolder else root
    missing = ["the repository"] if folder is None else _missing_files(folder, expect)
    if missing:
        raise WeightsUnavailableError(_hint(name_or_path, what, subfolder, param)
                                      + f"\n(not in the local HF cache: {', '.join(missing)})")
    return folder


# --- loaders ---------------------------------------------------------------------------------
def load_vae(name_or_path: str = SD_VAE_ID, *, subfolder: str | None = None,
             allow_download: bool = False, **kwargs: Any) -> Any:
    """The SD VAE as a diffusers ``AutoencoderKL`` in eval mode.

    Latents are ``SD_LATENT_SCALE * vae.encode(x).latent_dist.sample()``; decode with
    ``vae.decode(z / SD_LATENT_SCALE)``. Use ``subfolder="vae"`` for a full SD pipeline folder.
    """
    folder = resolve_pretrained(name_or_path, what="the SD VAE (AutoencoderKL)",
                                subfolder=subfolder, allow_download=allow_download,
                                param="vae")
    from diffusers import AutoencoderKL  # after resolving: a missing folder fails in seconds

    return AutoencoderKL.from_pretrained(folder, **kwargs).eval()


def load_instaflow_unet(name_or_path: str = INSTAFLOW_09B_ID, *, subfolder: str = "unet",
                        allow_download: bool = False, **kwargs: Any) -> VelocityNet:
    """An InstaFlow / 2-RF SD 1.5 UNet wrapped in the paper's convention.

    The raw ``UNet2DConditionModel`` u predicts noise -> data and takes the timestep ``1000 t``,
    so it is wrapped as ``VelocityNet(u, time_scale=1000, sign=-1)``: ``v(z, t) = -u(z, 1000 t)``
    and Eq. 5 gives ``f(z, t) = z - t v = z + t u(z, 1000 t)`` (docs/METHOD.md §6).
    """
    folder = resolve_pretrained(name_or_path, what="the InstaFlow/2-RF UNet",
                                subfolder=subfolder, allow_download=allow_download,
                                param="teacher")
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder, **kwargs)
    return VelocityNet(unet, time_scale=INSTAFLOW_TIME_SCALE, sign=-1.0, arch="instaflow_sd15")


def load_scflow_t2i_student(name_or_path: str = SCFLOW_T2I_ID, *,
                            subfolder: str = SCFLOW_T2I_SUBFOLDER, allow_download: bool = False,
                            **kwargs: Any) -> VelocityNet:
    """The authors' released SCFlow text-to-image student, in the paper's convention.

    It was distilled from InstaFlow's 2-RF and keeps that UNet's convention (noise -> data,
    timestep ``1000 t``), so it is wrapped like :func:`load_instaflow_unet`:
    ``VelocityNet(u, time_scale=1000, sign=-1)``; one Euler step is Eq. 5's ``f(z1, 1)``.
    """
    folder = resolve_pretrained(name_or_path, what="the released SCFlow T2I student UNet",
                                subfolder=subfolder, allow_download=allow_download,
                                param="student")
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder, **kwargs)
    return VelocityNet(unet, time_scale=INSTAFLOW_TIME_SCALE, sign=-1.0, arch="scflow_t2i")


def load_sd_pipeline_parts(name_or_path: str = INSTAFLOW_09B_ID, *, student: str | None = None,
                           student_subfolder: str = SCFLOW_T2I_SUBFOLDER,
                           allow_download: bool = False, **kwargs: Any) -> dict[str, Any]:
    """The parts of a diffusers SD 1.5 pipeline folder this project uses.

    Returns ``{"unet": VelocityNet (InstaFlow convention), "vae": AutoencoderKL,
    "tokenizer": CLIPTokenizer, "text_encoder": CLIPTextModel}``; only the subfolders
    ``unet/``, ``vae/``, ``tokenizer/`` and ``text_encoder/`` are read (no scheduler, no
    safety checker). Raises if the text width differs from the UNet's cross-attention width.

    ``student`` (e.g. :data:`SCFLOW_T2I_ID`): that repository's UNet (``student_subfolder``)
    replaces the pipeline's, and the pipeline's ``unet/`` is not read. The released SCFlow
    student ships only a UNet; it runs with the SD 1.5 parts of its teacher's pipeline
    (:data:`INSTAFLOW_2RF_ID`).
    """
    # resolve every part first, so a missing one fails before any model is read
    if student is not None:
        resolve_pretrained(student, what="the student UNet", subfolder=student_subfolder,
                           allow_download=allow_download, param="student")
    subs = (("vae", DIFFUSERS_MODEL_FILES), ("tokenizer", TOKENIZER_FILES),
            ("text_encoder", TRANSFORMERS_MODEL_FILES))
    for sub, expect in ((("unet", DIFFUSERS_MODEL_FILES),) if student is None else ()) + subs:
        resolve_pretrained(name_or_path, what=f"the pipeline's {sub}", subfolder=sub,
                           expect=expect, allow_download=allow_download, param="teacher")
    from transformers import CLIPTextModel, CLIPTokenizer

    from scflow.text import check_text_width

    unet = (load_instaflow_unet(name_or_path, **kwargs) if student is None
            else load_scflow_t2i_student(student, subfolder=student_subfolder, **kwargs))
    vae = load_vae(name_or_path, subfolder="vae", **kwargs)
    tok_dir = resolve_pretrained(name_or_path, what="the CLIP tokenizer", subfolder="tokenizer",
                                 expect=TOKENIZER_FILES)
    te_dir = resolve_pretrained(name_or_path, what="the CLIP text encoder",
                                subfolder="text_encoder", expect=TRANSFORMERS_MODEL_FILES)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    text_encoder = CLIPTextModel.from_pretrained(te_dir).eval()
    check_text_width(text_encoder.config.hidden_size, unet)
    return {"unet": unet, "vae": vae, "tokenizer": tokenizer, "text_encoder": text_encoder}


def load_velocity_checkpoint(path: str | Path, arch_config: Mapping[str, Any], *,
                             model_class: str = "UNet2DModel", time_scale: float = 1000.0,
                             sign: float = 1.0, num_classes: int = 0) -> VelocityNet:
    """Load a diffusers ``save_pretrained`` folder (``config.json`` + weights) strictly.

    ``arch_config`` holds the constructor arguments the caller expects (unspecified ones are
    the class defaults); every constructor argument of the saved config must equal them, and
    the weights must fill the model with no missing, unexpected or mis-shaped tensor.
    (Folders written by :meth:`VelocityNet.save` carry their own wrapper config: use
    :meth:`VelocityNet.load` for those.)
    """
    import inspect

    import diffusers

    folder = resolve_pretrained(str(path), what=f"a {model_class} checkpoint")
    saved = json.loads((folder / "config.json").read_text())
    if saved.get("_class_name", model_class) != model_class:
        raise ValueError(f"checkpoint at {folder} is a {saved['_class_name']}, "
                         f"expected {model_class}")
    cls = getattr(diffusers, model_class)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(arch_config) - set(params))
    if unknown:
        raise ValueError(f"arch_config has keys {model_class} does not take: {unknown}")
    defaults = {k: p.default for k, p in params.items()
                if k != "self" and p.default is not inspect.Parameter.empty}
    expected = _jsonable({**defaults, **arch_config})
    found = _jsonable({k: saved.get(k, defaults.get(k)) for k in expected})
    check_config_match(found, expected, where=str(folder))
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise ValueError(f"checkpoint at {folder} does not fit {model_class}: {bad}")
    return VelocityNet(model, time_scale=time_scale, sign=sign, num_classes=num_classes,
                       arch=f"checkpoint:{folder.name}")


LFM_MODEL_480_URL = "https://drive.google.com/file/d/1AIuMr5Ewti6_wQAJdM9elsrERwrxI9Sb/view"
"""Where LFM's README publishes the ``celeba_f8_adm`` checkpoint ``model_480.pth``."""


def lfm_download_command(dest: str | Path = LFM_MODEL_480_PATH) -> str:
    """The shell command that fetches LFM's CelebA-HQ 256 teacher to ``dest``."""
    return f'pip install gdown && gdown --fuzzy "{LFM_MODEL_480_URL}" -O {dest}'

def load_lfm_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """LFM's CelebA-HQ teacher weights (``celeba_f8_adm/model_480.pth``) as a plain state dict.

    The file is a raw ADM (guided-diffusion style) state dict saved from a DDP model (LFM saves
    ``model.state_dict()`` with the EMA weights swapped in), so every key starts with
    ``module.``; that prefix is stripped here. :mod:`scflow.adm` converts it to a
    ``UNet2DModel`` (:func:`scflow.adm.load_lfm_teacher`). A training-state wrapper (LFM's
    ``content.pth``: ``model_dict``) is unwrapped too, but holds the raw, non-EMA weights.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"LFM CelebA-HQ teacher checkpoint not found at {path}. LFM's README "
            "(github.com/VinAIResearch/LFM, celeba_f8_adm) publishes it; on a machine with "
            f"network run\n    {lfm_download_command(path)}\nand pass its path.")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    for key in ("model_dict", "state_dict", "model"):  # tolerate training-state wrappers
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a flat tensor state dict")
    prefix = "module."
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in obj.items()}
