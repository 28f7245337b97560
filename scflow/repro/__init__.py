"""The reproduction machinery: everything that turns the library into the paper's tables.

The math and models live one level up (``scflow.flow``, ``losses``, ``timeskip``, ``distill``,
``trainer``, ...) and never import this package; this package drives them from presets and run
files, and the notebooks drive this package (core <- repro <- notebooks).

| module | what |
|---|---|
| :mod:`~scflow.repro.run` | command line: ``python -m scflow.repro.run papermill_runs/`` |
| :mod:`~scflow.repro.listing` | what ``--list`` / ``--dry-run`` / ``--verify-data`` print; the runner's environment |
| :mod:`~scflow.repro.plan` | run files -> validated, planned runs (before anything executes) |
| :mod:`~scflow.repro.runfile` | reading one run file safely (size, encoding, keys given twice, alias bombs) |
| :mod:`~scflow.repro.textfile` | reading a small user-provided text file (regular, UTF-8, bounded) |
| :mod:`~scflow.repro.cost` | a run's estimated time and memory before it starts |
| :mod:`~scflow.repro.execute` | executing one planned run with papermill (log, executed notebook) |
| :mod:`~scflow.repro.batch` | a batch: resume, identical runs once, ``--jobs``, barriers |
| :mod:`~scflow.repro.paramspec` | the declaration of one notebook parameter (type, range, neutral value) |
| :mod:`~scflow.repro.presets` | every parameter and its value per preset (smoke, mini, celebahq256, gpu) |
| :mod:`~scflow.repro.params` | resolving a notebook's parameters and their configuration hash |
| :mod:`~scflow.repro.notebooks` | locating notebooks and their ``parameters`` cell |
| :mod:`~scflow.repro.configs` | notebook parameters -> the library's typed configs |
| :mod:`~scflow.repro.methods` | the rows of Table 4 (their switches), defined once |
| :mod:`~scflow.repro.experiment` | a notebook's set-up: data, codec, teacher; resumable, cached distillation |
| :mod:`~scflow.repro.student` | the steps notebooks 02-05 share (one student of Table 4) |
| :mod:`~scflow.repro.t2i_experiment` | notebook 08's set-up (text-to-image miniature) |
| :mod:`~scflow.repro.budget` | the training-budget study (notebook 09) |
| :mod:`~scflow.repro.results` | result CSVs with their configuration hash and digest, figures |
| :mod:`~scflow.repro.results_read` | the results columns; reading a results CSV, verified |
| :mod:`~scflow.repro.csvfile` | CSV files sealed with a digest of their rows |
| :mod:`~scflow.repro.plots` | the notebooks' figures |
| :mod:`~scflow.repro.samples` | samples files: the first samples per NFE a run drew |
| :mod:`~scflow.repro.sample_figures` | sample grids from samples files (rows = methods, columns = NFE) |
| :mod:`~scflow.repro.units` | our numbers per unit: a training seed and a draw of the evaluation bank |
| :mod:`~scflow.repro.paired` | the interval of a paired mean difference (over seeds, else draws) |
| :mod:`~scflow.repro.committed` | a run's committed numbers beside the paper's (notebooks' "What to see") |
| :mod:`~scflow.repro.tables` | results and the paper's numbers (``data/``) as comparable tables |
| :mod:`~scflow.repro.claim_spec` | what a claim is: two quantities read off the tables |
| :mod:`~scflow.repro.claim_rules` | how a claim is judged: paired differences and their interval |
| :mod:`~scflow.repro.claims` | the paper's claims, judged on the results |
| :mod:`~scflow.repro.noise_table` | REPORT.md's noise table: floors, evaluation sd, paired SE |
| :mod:`~scflow.repro.teacher_ref` | the teacher's converged reference, one-step SCFlow against it |
| :mod:`~scflow.repro.report_figures` | REPORT.md's figures |
| :mod:`~scflow.repro.report` | ``results/<preset>/REPORT.md`` |
| :mod:`~scflow.repro.artifacts` | the shipped trained artefacts and their manifest |
| :mod:`~scflow.repro.gpu_check` | the first command on a GPU machine |
"""
