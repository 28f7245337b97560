"""Text-to-image SCFlow (paper Sec. "Text-to-image", Tables 1-2), real-scale path and miniature.

| module | what | paper |
|---|---|---|
| :mod:`~scflow.t2i.captions` | digit captions (templates), COCO caption files | Tables 1-2 prompts |
| :mod:`~scflow.t2i.teacher` | text-conditional flow teacher with caption dropout, one reflow round (2-RF) | Eq. 2-3; 2-RF teacher |
| :mod:`~scflow.t2i.discriminator` | UNet-encoder discriminator (teacher's down + mid blocks, small head) | Eq. 7 (T2I code) |
| :mod:`~scflow.t2i.sampling` | per-prompt noise, sharded rendering, seconds-per-image harness | Table 2 "time" |
| :mod:`~scflow.t2i.scores` | prompt accuracy (miniature), CLIP score with open_clip (real scale) | Tables 1-2 "CLIP" |
| :mod:`~scflow.repro.t2i_experiment` | the notebook's glue: data, teachers, distillation runs (cached) | Tables 1-2 rows |

Distillation itself is :class:`scflow.trainer.Distiller` unchanged: the teacher is called with
classifier-free guidance (Eq. 3, ``guidance`` > 1, the empty prompt as null), student and
target with the caption only, so guidance is distilled into the student.
"""
